/**
 * Incremental PostgreSQL v3 parser: push chunks split anywhere, pull complete packets out. The
 * consumer says what it expects next (an untyped startup packet or a typed message), because the
 * protocol changes framing after startup. Messages are `subarray` views into the input; only
 * bytes left over across chunks are copied. Buffered bytes stay below one message plus one chunk,
 * and a length over the limit fails as soon as its header arrives.
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { PgFailure, type PgSide, protocolError } from './errors.js';
import { SqlState, StartupCode } from './messages.js';

/** A typed message: its type byte and its body (without type and length). */
export interface PgMessage {
  readonly code: number;
  readonly body: Buffer;
}

/** A typed message plus its whole wire frame (type, length, body), for forwarding unchanged. */
export interface PgFrame extends PgMessage {
  readonly frame: Buffer;
}

/**
 * A frame whose body view is made only when asked for: a large COPY or result is a message per
 * row, most of them forwarded whole or read in place, and a Buffer view costs ~0.1 µs to make.
 */
class LazyFrame implements PgFrame {
  constructor(
    readonly code: number,
    readonly frame: Buffer,
  ) {}

  get body(): Buffer {
    return this.frame.subarray(5);
  }
}

/** The packets a client may open a connection with. */
export type StartupPacket =
  | { readonly kind: 'ssl-request' }
  | { readonly kind: 'gssenc-request' }
  | { readonly kind: 'cancel-request'; readonly processId: number; readonly secretKey: Buffer }
  | {
      readonly kind: 'startup';
      readonly majorVersion: number;
      readonly minorVersion: number;
      /** Parameters in the order sent; names are unique. */
      readonly parameters: ReadonlyMap<string, string>;
    };

export interface PacketReaderOptions {
  /** Whose bytes these are; decides the error code of a violation. */
  readonly side: PgSide;
  /** Largest startup packet accepted, length field included (postgres: 10000). */
  readonly maxStartupBytes: number;
  /** Largest typed message accepted, type byte and length field included. */
  readonly maxMessageBytes: number;
}

/** Protocol 3.2 cancel keys are up to 256 bytes; 3.0 keys are 4. */
const MAX_CANCEL_KEY_BYTES = 256;

export class PacketReader {
  private readonly options: PacketReaderOptions;
  private buf: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(options: PacketReaderOptions) {
    this.options = options;
  }

  /** Chunks received after `buf`, joined only once a whole message is there (no O(n²) copying). */
  private queue: Buffer[] = [];
  private queued = 0;

  /** Bytes received and not yet returned. */
  get bufferedBytes(): number {
    return this.buf.length - this.offset + this.queued;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.offset >= this.buf.length && this.queued === 0) {
      this.buf = chunk;
      this.offset = 0;
      return;
    }
    this.queue.push(chunk);
    this.queued += chunk.length;
  }

  /** Makes the next `bytes` buffered bytes contiguous in `buf`; false when fewer are buffered. */
  private contiguous(bytes: number): boolean {
    if (this.buf.length - this.offset >= bytes) return true;
    if (this.bufferedBytes < bytes) return false;
    this.buf = Buffer.concat([this.buf.subarray(this.offset), ...this.queue]);
    this.offset = 0;
    this.queue = [];
    this.queued = 0;
    return true;
  }

  /**
   * The next untyped startup packet, or undefined until it is complete.
   *   Int32 length (counting itself) | Int32 request code | body
   */
  nextStartup(): StartupPacket | undefined {
    if (!this.contiguous(4)) return undefined;
    const length = this.buf.readInt32BE(this.offset);
    if (length > this.options.maxStartupBytes) {
      throw protocolError(
        this.options.side,
        PgFailure.startupTooLarge,
        `startup packet of ${length >>> 0} bytes exceeds the ${this.options.maxStartupBytes}-byte limit`,
      );
    }
    if (length < 8) {
      throw protocolError(
        this.options.side,
        PgFailure.malformed,
        `invalid startup packet length ${length}`,
      );
    }
    if (!this.contiguous(length)) return undefined;
    const packet = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return parseStartupPacket(packet, this.options.side);
  }

  /**
   * The next typed message, or undefined until it is complete.
   *   Byte1 type | Int32 length (counting itself, not the type) | body
   */
  nextMessage(): PgMessage | undefined {
    return this.nextFrame();
  }

  /** Like nextMessage, with the whole frame as a view too (no copy). */
  nextFrame(): PgFrame | undefined {
    if (!this.contiguous(5)) return undefined;
    const code = this.buf[this.offset] as number;
    const length = this.buf.readInt32BE(this.offset + 1);
    if (length < 4) {
      throw protocolError(
        this.options.side,
        PgFailure.malformed,
        `invalid length ${length} in message type 0x${code.toString(16)}`,
      );
    }
    if (length + 1 > this.options.maxMessageBytes) {
      throw protocolError(
        this.options.side,
        PgFailure.messageTooLarge,
        `message type 0x${code.toString(16)} of ${length + 1} bytes exceeds the ${this.options.maxMessageBytes}-byte limit`,
      );
    }
    if (!this.contiguous(1 + length)) return undefined;
    const end = this.offset + 1 + length;
    const frame = this.buf.subarray(this.offset, end);
    this.offset = end;
    return new LazyFrame(code, frame);
  }

  /** Hands over every buffered byte (e.g. before switching to a raw relay) and empties the reader. */
  takeRemaining(): Buffer {
    const rest = Buffer.concat([this.buf.subarray(this.offset), ...this.queue]);
    this.buf = Buffer.alloc(0);
    this.offset = 0;
    this.queue = [];
    this.queued = 0;
    return rest;
  }
}

/** Parses one complete startup-phase packet (length field included). */
export function parseStartupPacket(packet: Buffer, side: PgSide = 'client'): StartupPacket {
  const code = packet.readInt32BE(4);
  switch (code) {
    case StartupCode.sslRequest:
    case StartupCode.gssEncRequest:
      if (packet.length !== 8) {
        throw protocolError(
          side,
          PgFailure.malformed,
          `invalid length ${packet.length} of an encryption request`,
        );
      }
      return { kind: code === StartupCode.sslRequest ? 'ssl-request' : 'gssenc-request' };
    case StartupCode.cancelRequest:
      // Int32 process id, then the secret key (4 bytes in 3.0, up to 256 in 3.2).
      if (packet.length < 16 || packet.length > 12 + MAX_CANCEL_KEY_BYTES) {
        throw protocolError(
          side,
          PgFailure.malformed,
          `invalid length ${packet.length} of a cancel request`,
        );
      }
      return {
        kind: 'cancel-request',
        processId: packet.readInt32BE(8),
        secretKey: packet.subarray(12),
      };
  }
  const majorVersion = code >>> 16;
  const minorVersion = code & 0xffff;
  if (majorVersion !== 3) {
    throw protocolError(
      side,
      PgFailure.unsupportedProtocol,
      `unsupported frontend protocol ${majorVersion}.${minorVersion}: hoop speaks 3.0`,
      SqlState.featureNotSupported,
    );
  }
  return { kind: 'startup', majorVersion, minorVersion, parameters: parseParameters(packet, side) };
}

/** Startup parameters: `name\0value\0` pairs, ended by one more `\0` that is the packet's last byte. */
function parseParameters(packet: Buffer, side: PgSide): Map<string, string> {
  const parameters = new Map<string, string>();
  let offset = 8;
  for (;;) {
    if (offset >= packet.length) {
      throw protocolError(side, PgFailure.malformed, 'startup packet is missing its terminator');
    }
    if (packet[offset] === 0) {
      if (offset !== packet.length - 1) {
        throw protocolError(
          side,
          PgFailure.malformed,
          'startup packet has bytes after its terminator',
        );
      }
      return parameters;
    }
    const name = readCString(packet, offset);
    if (name === undefined) break;
    const value = readCString(packet, name.next);
    if (value === undefined) break;
    if (parameters.has(name.value)) {
      throw protocolError(
        side,
        PgFailure.malformed,
        `startup parameter "${name.value}" appears twice`,
      );
    }
    parameters.set(name.value, value.value);
    offset = value.next;
  }
  throw protocolError(side, PgFailure.malformed, 'startup packet has an unterminated string');
}

/** A NUL-terminated UTF-8 string at `offset` and the offset after its NUL, or undefined if unterminated. */
export function readCString(
  buf: Buffer,
  offset: number,
): { value: string; next: number } | undefined {
  const end = buf.indexOf(0, offset);
  if (end < 0) return undefined;
  return { value: buf.toString('utf8', offset, end), next: end + 1 };
}

/**
 * The fields of an ErrorResponse or NoticeResponse body: Byte1 field type + string, repeated,
 * ended by a zero byte. Unknown field types are kept; a truncated body keeps what parsed.
 */
export function parseErrorFields(body: Buffer): Map<number, string> {
  const fields = new Map<number, string>();
  let offset = 0;
  while (offset < body.length) {
    const type = body[offset] as number;
    if (type === 0) break;
    const value = readCString(body, offset + 1);
    if (value === undefined) break;
    fields.set(type, value.value);
    offset = value.next;
  }
  return fields;
}
