/**
 * The spool's on-disk record format. A segment file is a fixed file header followed by records:
 *
 *   file header  "HOOPSPL1" (8 bytes)
 *   record       length u32 BE | crc u32 BE | seq u64 BE | payload (length bytes, UTF-8 JSON)
 *
 * `crc` is CRC-32 (zlib polynomial) over the 8 seq bytes followed by the payload, so a record
 * whose seq or payload changed is detected. `length` is the payload length only. `seq` is the
 * agent-wide sequence number (monotonic across sessions and restarts; see spool.ts).
 *
 * Decoding distinguishes a *torn tail* (the file ends inside a record: the write that was in
 * progress when the process or machine died) from *corruption* (a complete record whose CRC does
 * not match, or a length no writer could have produced).
 */
import { crc32 } from 'node:zlib';

export const FILE_MAGIC = Buffer.from('HOOPSPL1', 'latin1');
export const RECORD_HEADER_BYTES = 16;

export interface SpoolRecord {
  readonly seq: number;
  readonly payload: Buffer;
}

export function encodeRecord(seq: number, payload: Buffer): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`bad spool seq ${seq}`);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeBigUInt64BE(BigInt(seq), 8);
  payload.copy(out, RECORD_HEADER_BYTES);
  out.writeUInt32BE(crcOf(out.subarray(8)), 4);
  return out;
}

function crcOf(seqAndPayload: Buffer): number {
  return crc32(seqAndPayload) >>> 0;
}

export type DecodeResult =
  | { readonly kind: 'record'; readonly record: SpoolRecord; readonly next: number }
  /** The buffer ends inside this record (or its header): a torn tail if this is EOF. */
  | { readonly kind: 'partial' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/**
 * Decodes the record starting at `offset` in `buf`. `maxPayload` bounds `length`, so garbage
 * never makes the reader wait for (or allocate) gigabytes.
 */
export function decodeRecord(buf: Buffer, offset: number, maxPayload: number): DecodeResult {
  if (buf.length - offset < RECORD_HEADER_BYTES) return { kind: 'partial' };
  const length = buf.readUInt32BE(offset);
  if (length > maxPayload) {
    return { kind: 'corrupt', reason: `record length ${length} exceeds ${maxPayload}` };
  }
  const end = offset + RECORD_HEADER_BYTES + length;
  if (buf.length < end) return { kind: 'partial' };
  const crc = buf.readUInt32BE(offset + 4);
  if (crcOf(buf.subarray(offset + 8, end)) !== crc) {
    return { kind: 'corrupt', reason: 'CRC mismatch' };
  }
  const seq = Number(buf.readBigUInt64BE(offset + 8));
  return {
    kind: 'record',
    record: { seq, payload: buf.subarray(offset + RECORD_HEADER_BYTES, end) },
    next: end,
  };
}

export interface ScanResult {
  readonly records: SpoolRecord[];
  /** Byte offset just past the last good record. */
  readonly goodBytes: number;
  /** Set when the data ends inside a record (torn write). */
  readonly tornTail: boolean;
  /** Set when a complete record is bad, or the file header is wrong. */
  readonly corrupt?: string;
}

/** Decodes a whole segment file's bytes (header included). */
export function scanSegment(buf: Buffer, maxPayload: number): ScanResult {
  if (buf.length < FILE_MAGIC.length) {
    // A header that was never completely written: nothing in this file was ever accepted.
    const prefixOk = FILE_MAGIC.subarray(0, buf.length).equals(buf);
    return prefixOk
      ? { records: [], goodBytes: 0, tornTail: buf.length > 0 }
      : { records: [], goodBytes: 0, tornTail: false, corrupt: 'not a spool file (bad header)' };
  }
  if (!buf.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
    return { records: [], goodBytes: 0, tornTail: false, corrupt: 'not a spool file (bad header)' };
  }
  const records: SpoolRecord[] = [];
  let offset = FILE_MAGIC.length;
  let previous = -1;
  for (;;) {
    if (offset === buf.length) return { records, goodBytes: offset, tornTail: false };
    const result = decodeRecord(buf, offset, maxPayload);
    if (result.kind === 'partial') return { records, goodBytes: offset, tornTail: true };
    if (result.kind === 'corrupt') {
      return {
        records,
        goodBytes: offset,
        tornTail: false,
        corrupt: `${result.reason} at byte ${offset}`,
      };
    }
    if (result.record.seq <= previous) {
      return {
        records,
        goodBytes: offset,
        tornTail: false,
        corrupt: `seq ${result.record.seq} after ${previous} at byte ${offset}`,
      };
    }
    previous = result.record.seq;
    records.push(result.record);
    offset = result.next;
  }
}
