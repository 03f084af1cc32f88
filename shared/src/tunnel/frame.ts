/**
 * Tunnel frames. A WebSocket binary message carries one or more frames back to back:
 *
 *   0      1              5              9
 *   +------+--------------+--------------+-------------------+
 *   | kind | stream (u32) | length (u32) | body (length B)   |
 *   +------+--------------+--------------+-------------------+
 *
 * kind: DATA (raw stream bytes, untouched), CONTROL (msgpack body, see messages.ts),
 * WINDOW (body: u32 credit in bytes granted to the peer for that stream).
 * Stream 0 is the tunnel itself (hello, errors). Integers are big-endian.
 */
import { HoopError } from '../errors.js';

export const FrameKind = {
  data: 0x01,
  control: 0x02,
  window: 0x03,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FRAME_HEADER_BYTES = 9;
export const TUNNEL_STREAM = 0;
export const MAX_STREAM_ID = 0xffff_ffff;

export interface Frame {
  readonly kind: FrameKind;
  readonly stream: number;
  /** A view into the received buffer; copy it if you keep it past the current tick. */
  readonly body: Buffer;
  /** The whole encoded frame (header + body), a view the broker's relay forwards as is. */
  readonly raw: Buffer;
}

export function isFrameKind(value: number): value is FrameKind {
  return value === FrameKind.data || value === FrameKind.control || value === FrameKind.window;
}

export function encodeHeader(kind: FrameKind, stream: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = kind;
  header.writeUInt32BE(stream, 1);
  header.writeUInt32BE(length, 5);
  return header;
}

export function encodeFrame(kind: FrameKind, stream: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out[0] = kind;
  out.writeUInt32BE(stream, 1);
  out.writeUInt32BE(body.length, 5);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}

export function encodeWindow(stream: number, credit: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  out[0] = FrameKind.window;
  out.writeUInt32BE(stream, 1);
  out.writeUInt32BE(4, 5);
  out.writeUInt32BE(credit, FRAME_HEADER_BYTES);
  return out;
}

export function decodeWindow(frame: Frame): number {
  if (frame.body.length !== 4) {
    throw new HoopError(
      'FRAME_MALFORMED',
      `window frame body must be 4 bytes, got ${frame.body.length}`,
    );
  }
  const credit = frame.body.readUInt32BE(0);
  if (credit === 0) throw new HoopError('FRAME_MALFORMED', 'window frame grants zero credit');
  return credit;
}

/** Rewrites the stream id of an encoded frame in place (the broker's relay does this). */
export function rewriteStream(encoded: Buffer, stream: number): void {
  encoded.writeUInt32BE(stream, 1);
}
