/**
 * Batches outgoing frames into one WebSocket message per event-loop turn, so many small frames
 * (one per psql round trip, window grants, …) cost one syscall, and watches the socket's buffered
 * bytes against the tunnel's limit (TUNNEL_BUFFER_EXCEEDED).
 */
import { HoopError } from '../errors.js';
import { encodeHeader, FRAME_HEADER_BYTES, FrameKind } from './frame.js';
import type { TunnelLimits } from './limits.js';
import { type WebSocketLike, WS_OPEN } from './socket.js';

/**
 * A message is sent once it holds this much, within the turn. Bulk data (COPY) then travels in
 * messages of ~128–200 KB: every message is one allocation on each side (the batch here, the
 * reassembled message in the peer's WebSocket receiver), and blocks under the launcher's fixed
 * 256 KB mmap threshold come from malloc's free lists instead of fresh zeroed mappings. Larger
 * batches saved nothing measurable: a socket read is at most 64 KB anyway.
 */
export const MESSAGE_TARGET_BYTES = 128 * 1024;

export class FrameSender {
  private parts: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  private closed = false;
  /**
   * The header of the last queued part when it is a DATA frame (its body queued right after it):
   * more data for the same stream extends that frame instead of starting a new one, so a burst
   * of small writes (a server's startup messages, COPY rows read a few KB at a time) arrives as
   * one frame and is written to the far socket with one call.
   */
  private openData: { header: Buffer; stream: number; length: number } | undefined;
  /** Queued bytes that send the batch at once (read on every push, so worked out once). */
  private readonly flushThreshold: number;

  constructor(
    private readonly ws: WebSocketLike,
    private readonly limits: TunnelLimits,
    private readonly onOverflow: (err: HoopError) => void,
  ) {
    this.flushThreshold = Math.min(
      MESSAGE_TARGET_BYTES,
      limits.maxMessageBytes - limits.maxFrameBytes - FRAME_HEADER_BYTES,
    );
  }

  /** Queues one already-encoded frame (or several back to back). */
  push(encoded: Buffer): void {
    if (this.closed) return;
    this.openData = undefined;
    this.parts.push(encoded);
    this.bytes += encoded.length;
    this.schedule();
  }

  /** Queues a DATA frame without copying the body; bodies over the frame limit are split. */
  pushData(stream: number, body: Buffer): void {
    if (this.closed) return;
    const max = this.limits.maxFrameBytes;
    const open = this.openData;
    if (open !== undefined && open.stream === stream && open.length + body.length <= max) {
      open.length += body.length;
      open.header.writeUInt32BE(open.length, 5);
      this.parts.push(body);
      this.bytes += body.length;
      if (this.bytes >= this.flushThreshold) this.flush();
      this.schedule();
      return;
    }
    for (let offset = 0; offset < body.length; offset += max) {
      const part = offset === 0 && body.length <= max ? body : body.subarray(offset, offset + max);
      const header = encodeHeader(FrameKind.data, stream, part.length);
      this.parts.push(header, part);
      this.openData = { header, stream, length: part.length };
      this.bytes += FRAME_HEADER_BYTES + part.length;
      if (this.bytes >= this.flushThreshold) this.flush();
    }
    this.schedule();
  }

  /** Bytes waiting in this sender plus bytes the socket has not written yet. */
  get bufferedBytes(): number {
    return this.bytes + this.ws.bufferedAmount;
  }

  flush(): void {
    this.scheduled = false;
    if (this.parts.length === 0 || this.closed) return;
    if (this.ws.readyState !== WS_OPEN) {
      this.parts = [];
      this.bytes = 0;
      this.openData = undefined;
      return;
    }
    const message =
      this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    this.openData = undefined;
    this.ws.send(message, { binary: true });
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.onOverflow(
        new HoopError(
          'TUNNEL_BUFFER_EXCEEDED',
          `tunnel peer is not reading: ${this.ws.bufferedAmount} bytes queued (limit ${this.limits.maxBufferedBytes})`,
        ),
      );
    }
  }

  close(): void {
    this.closed = true;
    this.parts = [];
    this.bytes = 0;
    this.openData = undefined;
  }

  private schedule(): void {
    if (this.bytes === 0) return;
    if (this.bytes >= this.flushThreshold) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
}
