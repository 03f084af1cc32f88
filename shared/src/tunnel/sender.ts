/**
 * Batches outgoing frames into one WebSocket message per event-loop turn, so many small frames
 * (one per psql round trip, window grants, …) cost one syscall, and watches the socket's buffered
 * bytes against the tunnel's limit (TUNNEL_BUFFER_EXCEEDED).
 */
import { HoopError } from '../errors.js';
import { encodeHeader, FRAME_HEADER_BYTES, FrameKind } from './frame.js';
import type { TunnelLimits } from './limits.js';
import { type WebSocketLike, WS_OPEN } from './socket.js';

export class FrameSender {
  private parts: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly ws: WebSocketLike,
    private readonly limits: TunnelLimits,
    private readonly onOverflow: (err: HoopError) => void,
  ) {}

  /** Queues one already-encoded frame (or several back to back). */
  push(encoded: Buffer): void {
    if (this.closed) return;
    this.parts.push(encoded);
    this.bytes += encoded.length;
    this.schedule();
  }

  /** Queues a DATA frame without copying the body; bodies over the frame limit are split. */
  pushData(stream: number, body: Buffer): void {
    if (this.closed) return;
    const max = this.limits.maxFrameBytes;
    for (let offset = 0; offset < body.length; offset += max) {
      const part = offset === 0 && body.length <= max ? body : body.subarray(offset, offset + max);
      this.parts.push(encodeHeader(FrameKind.data, stream, part.length), part);
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
      return;
    }
    const message =
      this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
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
  }

  private get flushThreshold(): number {
    return this.limits.maxMessageBytes - this.limits.maxFrameBytes - FRAME_HEADER_BYTES;
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
