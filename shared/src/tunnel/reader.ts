/**
 * Incremental frame reader: feed it chunks in any split, take complete frames out. Frames are
 * views (`subarray`) into the input when a frame lies within one chunk; only a frame spanning
 * chunks is copied. Buffered bytes never exceed one header plus `maxFrameBytes`.
 */
import { HoopError } from '../errors.js';
import { FRAME_HEADER_BYTES, type Frame, isFrameKind } from './frame.js';

export class FrameReader {
  private readonly maxFrameBytes: number;
  private pending: Buffer | undefined;

  constructor(options: { maxFrameBytes: number }) {
    this.maxFrameBytes = options.maxFrameBytes;
  }

  /** Bytes held from an incomplete frame. */
  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }

  /** Parses `chunk`, returning every frame it completes. Throws a HoopError on bad input. */
  push(chunk: Buffer): Frame[] {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const frames: Frame[] = [];
    let offset = 0;
    while (buf.length - offset >= FRAME_HEADER_BYTES) {
      const kind = buf[offset] as number;
      if (!isFrameKind(kind)) {
        throw new HoopError(
          'FRAME_UNKNOWN_KIND',
          `unknown tunnel frame kind 0x${kind.toString(16)}`,
        );
      }
      const stream = buf.readUInt32BE(offset + 1);
      const length = buf.readUInt32BE(offset + 5);
      if (length > this.maxFrameBytes) {
        throw new HoopError(
          'FRAME_TOO_LARGE',
          `tunnel frame of ${length} bytes exceeds the ${this.maxFrameBytes}-byte limit`,
        );
      }
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      frames.push({
        kind,
        stream,
        body: buf.subarray(offset + FRAME_HEADER_BYTES, end),
        raw: buf.subarray(offset, end),
      });
      offset = end;
    }
    if (offset < buf.length) this.pending = Buffer.from(buf.subarray(offset));
    return frames;
  }

  /** Call at a message boundary that must end on a frame boundary. */
  assertDrained(): void {
    if (this.pending !== undefined) {
      const held = this.pending.length;
      this.pending = undefined;
      throw new HoopError(
        'FRAME_TRUNCATED',
        `tunnel message ended inside a frame (${held} bytes left over)`,
      );
    }
  }
}
