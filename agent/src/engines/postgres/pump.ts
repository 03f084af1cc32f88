/**
 * One direction of the policy proxy: reads a stream chunk by chunk, cuts it into messages
 * (PacketReader, bounded) and hands each to a handler that queues output for the destination.
 * Output of a chunk is written in one go. Backpressure: the source is paused while the
 * destination's buffer is full (write returned false) and while an asynchronous step of the
 * handler (catalog lookup, waiting for answers before a denial) is pending, so buffered bytes
 * stay within one chunk plus one message plus the streams' high-water marks.
 */
import type { Readable, Writable } from 'node:stream';
import type { PacketReader, PgFrame } from './reader.js';

export type FrameHandler = (frame: PgFrame, out: Buffer[]) => undefined | Promise<void>;

export class MessagePump {
  private readonly source: Readable;
  private readonly dest: Writable;
  private readonly reader: PacketReader;
  private readonly handle: FrameHandler;
  private readonly onFailure: (err: unknown) => void;
  private running = false;
  private blocked = false;
  private failed = false;
  /** Output of the handler, emptied in place on every flush (handlers may keep the reference). */
  private readonly out: Buffer[] = [];

  constructor(options: {
    source: Readable;
    dest: Writable;
    reader: PacketReader;
    handle: FrameHandler;
    onFailure: (err: unknown) => void;
  }) {
    this.source = options.source;
    this.dest = options.dest;
    this.reader = options.reader;
    this.handle = options.handle;
    this.onFailure = options.onFailure;
  }

  /** Starts reading, first processing `initial` (bytes read before the pump existed). */
  start(initial: Buffer): void {
    this.source.on('data', this.onData);
    if (initial.length > 0) this.reader.push(initial);
    void this.drain();
    this.source.resume();
  }

  stop(): void {
    this.source.off('data', this.onData);
  }

  private readonly onData = (chunk: Buffer | string): void => {
    this.reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (!this.running) void this.drain();
  };

  private async drain(): Promise<void> {
    if (this.running || this.failed) return;
    this.running = true;
    try {
      for (;;) {
        const frame = this.reader.nextFrame();
        if (frame === undefined) break;
        const pending = this.handle(frame, this.out);
        if (pending !== undefined) {
          this.source.pause();
          this.flush();
          await pending;
        }
      }
      this.flush();
    } catch (err) {
      this.failed = true;
      this.stop();
      this.flush();
      this.onFailure(err);
      return;
    } finally {
      this.running = false;
    }
    if (!this.blocked && !this.failed) this.source.resume();
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const data = joinParts(this.out);
    this.out.length = 0;
    if (this.dest.destroyed || this.dest.writableEnded) return;
    if (!this.dest.write(data) && !this.blocked) {
      this.blocked = true;
      this.source.pause();
      this.dest.once('drain', () => {
        this.blocked = false;
        if (!this.running && !this.failed) this.source.resume();
      });
    }
  }
}

/**
 * The parts as one Buffer. Frames forwarded unchanged are views of the chunk they were read
 * from, one after the other: a run of such views is taken as one view of that memory instead
 * of being copied, so a chunk of rows that passed unchanged goes out without a copy.
 */
export function joinParts(parts: readonly Buffer[]): Buffer {
  const first = parts[0] as Buffer;
  if (parts.length === 1) return first;
  let end = first.byteOffset + first.length;
  let adjacent = true;
  for (let i = 1; i < parts.length && adjacent; i++) {
    const part = parts[i] as Buffer;
    adjacent = part.buffer === first.buffer && part.byteOffset === end;
    end += part.length;
  }
  if (adjacent) return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
  return Buffer.concat(parts);
}
