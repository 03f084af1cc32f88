/**
 * Decoders and encoders for the message bodies the policy proxy looks inside, both directions.
 * Every decoder checks bounds and fails with a typed PostgresEngineError (MALFORMED_MESSAGE),
 * never a RangeError. Values are `subarray` views into the message body.
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { PgFailure, type PgSide, protocolError } from './errors.js';
import { BackendCode, FrontendCode } from './messages.js';
import { parseErrorFields } from './reader.js';

/** A bounds-checked cursor over one message body. */
class BodyReader {
  private offset = 0;
  constructor(
    private readonly body: Buffer,
    private readonly side: PgSide,
    private readonly what: string,
  ) {}

  private fail(detail: string): never {
    throw protocolError(this.side, PgFailure.malformed, `${this.what}: ${detail}`);
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.body.length) this.fail('truncated');
  }

  int16(): number {
    this.need(2);
    const v = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  byte(): number {
    this.need(1);
    return this.body[this.offset++] as number;
  }

  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) this.fail('unterminated string');
    const value = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  bytes(count: number): Buffer {
    if (count < 0) this.fail(`negative length ${count}`);
    this.need(count);
    const v = this.body.subarray(this.offset, this.offset + count);
    this.offset += count;
    return v;
  }

  count(): number {
    const n = this.int16();
    if (n < 0) this.fail(`negative count ${n}`);
    return n;
  }

  end(): void {
    if (this.offset !== this.body.length) this.fail('trailing bytes');
  }
}

// ---- client (frontend) messages ----

export type ClientMessage =
  | { readonly type: 'query'; readonly sql: string }
  | {
      readonly type: 'parse';
      readonly name: string;
      readonly sql: string;
      readonly paramTypes: readonly number[];
    }
  | {
      readonly type: 'bind';
      readonly portal: string;
      readonly statement: string;
      readonly paramFormats: readonly number[];
      /** null for SQL NULL. */
      readonly params: readonly (Buffer | null)[];
      readonly resultFormats: readonly number[];
    }
  | { readonly type: 'describe'; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: 'execute'; readonly portal: string; readonly maxRows: number }
  | { readonly type: 'close'; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: 'sync' }
  | { readonly type: 'flush' }
  | { readonly type: 'copy-data'; readonly data: Buffer }
  | { readonly type: 'copy-done' }
  | { readonly type: 'copy-fail'; readonly message: string }
  | { readonly type: 'function-call' }
  | { readonly type: 'terminate' };

function statementOrPortal(r: BodyReader, side: PgSide): 'S' | 'P' {
  const t = r.byte();
  if (t !== 0x53 && t !== 0x50) {
    throw protocolError(side, PgFailure.malformed, `describe/close target 0x${t.toString(16)}`);
  }
  return t === 0x53 ? 'S' : 'P';
}

/** Decodes a frontend message the proxy understands; unknown types are a protocol error. */
export function decodeClientMessage(code: number, body: Buffer): ClientMessage {
  const side: PgSide = 'client';
  const r = new BodyReader(body, side, `client message 0x${code.toString(16)}`);
  let message: ClientMessage;
  switch (code) {
    case FrontendCode.query:
      message = { type: 'query', sql: r.cstring() };
      break;
    case FrontendCode.parse: {
      const name = r.cstring();
      const sql = r.cstring();
      const n = r.count();
      const paramTypes: number[] = [];
      for (let i = 0; i < n; i++) paramTypes.push(r.int32() >>> 0);
      message = { type: 'parse', name, sql, paramTypes };
      break;
    }
    case FrontendCode.bind: {
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) paramFormats.push(r.int16());
      const params: (Buffer | null)[] = [];
      for (let i = 0, n = r.count(); i < n; i++) {
        const len = r.int32();
        params.push(len === -1 ? null : r.bytes(len));
      }
      const resultFormats: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) resultFormats.push(r.int16());
      message = { type: 'bind', portal, statement, paramFormats, params, resultFormats };
      break;
    }
    case FrontendCode.describe:
      message = { type: 'describe', target: statementOrPortal(r, side), name: r.cstring() };
      break;
    case FrontendCode.execute:
      message = { type: 'execute', portal: r.cstring(), maxRows: r.int32() };
      break;
    case FrontendCode.close:
      message = { type: 'close', target: statementOrPortal(r, side), name: r.cstring() };
      break;
    case FrontendCode.sync:
      message = { type: 'sync' };
      break;
    case FrontendCode.flush:
      message = { type: 'flush' };
      break;
    case FrontendCode.copyData:
      return { type: 'copy-data', data: body };
    case FrontendCode.copyDone:
      message = { type: 'copy-done' };
      break;
    case FrontendCode.copyFail:
      message = { type: 'copy-fail', message: r.cstring() };
      break;
    case FrontendCode.functionCall:
      return { type: 'function-call' };
    case FrontendCode.terminate:
      message = { type: 'terminate' };
      break;
    default:
      throw protocolError(
        side,
        PgFailure.unexpectedMessage,
        `unexpected client message type 0x${code.toString(16)}`,
      );
  }
  r.end();
  return message;
}

// ---- server (backend) messages ----

export interface FieldDescription {
  readonly name: string;
  /** OID of the table the column comes from, 0 when it is not a plain table column. */
  readonly tableOid: number;
  /** Attribute number in that table, 0 when none. */
  readonly attnum: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

export type ServerMessage =
  | { readonly type: 'row-description'; readonly fields: readonly FieldDescription[] }
  | { readonly type: 'data-row'; readonly values: readonly (Buffer | null)[] }
  | { readonly type: 'command-complete'; readonly tag: string }
  | { readonly type: 'ready-for-query'; readonly status: TransactionStatus }
  | { readonly type: 'error'; readonly fields: Map<number, string> }
  | { readonly type: 'notice'; readonly fields: Map<number, string> }
  | {
      readonly type: 'copy-response';
      readonly direction: 'in' | 'out' | 'both';
      readonly format: number;
      readonly columnFormats: readonly number[];
    }
  | { readonly type: 'copy-data'; readonly data: Buffer }
  | { readonly type: 'copy-done' }
  | { readonly type: 'parameter-status'; readonly name: string; readonly value: string }
  | {
      readonly type: 'notification';
      readonly pid: number;
      readonly channel: string;
      readonly payload: string;
    }
  | { readonly type: 'parameter-description'; readonly types: readonly number[] }
  | {
      readonly type:
        | 'parse-complete'
        | 'bind-complete'
        | 'close-complete'
        | 'no-data'
        | 'portal-suspended'
        | 'empty-query';
    }
  | { readonly type: 'other'; readonly code: number };

export type TransactionStatus = 'I' | 'T' | 'E';

export function decodeServerMessage(code: number, body: Buffer): ServerMessage {
  const side: PgSide = 'target';
  const r = new BodyReader(body, side, `server message 0x${code.toString(16)}`);
  let message: ServerMessage;
  switch (code) {
    case BackendCode.rowDescription: {
      const fields: FieldDescription[] = [];
      for (let i = 0, n = r.count(); i < n; i++) {
        fields.push({
          name: r.cstring(),
          tableOid: r.int32() >>> 0,
          attnum: r.int16(),
          typeOid: r.int32() >>> 0,
          typeSize: r.int16(),
          typeModifier: r.int32(),
          format: r.int16(),
        });
      }
      message = { type: 'row-description', fields };
      break;
    }
    case BackendCode.dataRow:
      message = { type: 'data-row', values: decodeDataRowValues(r) };
      break;
    case BackendCode.commandComplete:
      message = { type: 'command-complete', tag: r.cstring() };
      break;
    case BackendCode.readyForQuery: {
      const s = String.fromCharCode(r.byte());
      if (s !== 'I' && s !== 'T' && s !== 'E') {
        throw protocolError(side, PgFailure.malformed, `ReadyForQuery status ${s}`);
      }
      message = { type: 'ready-for-query', status: s };
      break;
    }
    case BackendCode.errorResponse:
      return { type: 'error', fields: parseErrorFields(body) };
    case BackendCode.noticeResponse:
      return { type: 'notice', fields: parseErrorFields(body) };
    case BackendCode.copyInResponse:
    case BackendCode.copyOutResponse:
    case 0x57: {
      const format = r.byte();
      const columnFormats: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) columnFormats.push(r.int16());
      const direction =
        code === BackendCode.copyInResponse
          ? 'in'
          : code === BackendCode.copyOutResponse
            ? 'out'
            : 'both';
      message = { type: 'copy-response', direction, format, columnFormats };
      break;
    }
    case BackendCode.copyData:
      return { type: 'copy-data', data: body };
    case BackendCode.copyDone:
      message = { type: 'copy-done' };
      break;
    case BackendCode.parameterStatus:
      message = { type: 'parameter-status', name: r.cstring(), value: r.cstring() };
      break;
    case BackendCode.notificationResponse:
      message = {
        type: 'notification',
        pid: r.int32(),
        channel: r.cstring(),
        payload: r.cstring(),
      };
      break;
    case BackendCode.parameterDescription: {
      const types: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) types.push(r.int32() >>> 0);
      message = { type: 'parameter-description', types };
      break;
    }
    case BackendCode.parseComplete:
      message = { type: 'parse-complete' };
      break;
    case BackendCode.bindComplete:
      message = { type: 'bind-complete' };
      break;
    case BackendCode.closeComplete:
      message = { type: 'close-complete' };
      break;
    case BackendCode.noData:
      message = { type: 'no-data' };
      break;
    case BackendCode.portalSuspended:
      message = { type: 'portal-suspended' };
      break;
    case BackendCode.emptyQueryResponse:
      message = { type: 'empty-query' };
      break;
    default:
      return { type: 'other', code };
  }
  r.end();
  return message;
}

/** DataRow: Int16 column count, then per column Int32 length (-1 NULL) and the bytes. */
function decodeDataRowValues(r: BodyReader): (Buffer | null)[] {
  const values: (Buffer | null)[] = [];
  for (let i = 0, n = r.count(); i < n; i++) {
    const len = r.int32();
    values.push(len === -1 ? null : r.bytes(len));
  }
  return values;
}

/** Number of rows a command tag reports ("SELECT 3", "INSERT 0 5", "COPY 7"), if any. */
export function rowsFromTag(tag: string): number | undefined {
  const match = /(\d+)$/.exec(tag);
  if (match === null || /^(CREATE|ALTER|DROP)\b/.test(tag)) return undefined;
  return Number(match[1]);
}

// ---- encoders ----

function frame(code: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** DataRow ('D') rebuilt from values (null for SQL NULL), lengths recomputed. */
export function encodeDataRow(values: readonly (Buffer | null)[]): Buffer {
  let size = 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const out = Buffer.allocUnsafe(5 + size);
  out[0] = BackendCode.dataRow;
  out.writeInt32BE(4 + size, 1);
  out.writeInt16BE(values.length, 5);
  let offset = 7;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, offset);
      offset += 4;
    } else {
      out.writeInt32BE(v.length, offset);
      v.copy(out, offset + 4);
      offset += 4 + v.length;
    }
  }
  return out;
}

/** ReadyForQuery ('Z'): one status byte. */
export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return frame(BackendCode.readyForQuery, Buffer.from(status, 'latin1'));
}

/** CopyData ('d') in either direction (same type byte). */
export function encodeCopyData(data: Buffer): Buffer {
  return frame(BackendCode.copyData, data);
}

/** ErrorResponse/NoticeResponse ('E'/'N') from a field map, in the map's order. */
export function encodeFields(code: number, fields: ReadonlyMap<number, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of fields) {
    parts.push(Buffer.from([type]), Buffer.from(`${value.replaceAll('\0', '')}\0`, 'utf8'));
  }
  parts.push(Buffer.from([0]));
  return frame(code, Buffer.concat(parts));
}

/** ParameterStatus ('S'). */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return frame(
    BackendCode.parameterStatus,
    Buffer.from(`${name.replaceAll('\0', '')}\0${value.replaceAll('\0', '')}\0`, 'utf8'),
  );
}

/** NotificationResponse ('A'). */
export function encodeNotification(pid: number, channel: string, payload: string): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeInt32BE(pid, 0);
  return frame(
    BackendCode.notificationResponse,
    Buffer.concat([head, Buffer.from(`${channel}\0${payload.replaceAll('\0', '')}\0`, 'utf8')]),
  );
}

/** Query ('Q') — the proxy rewrites a client's COMMIT into ROLLBACK in a failed transaction. */
export function encodeQuery(sql: string): Buffer {
  return frame(FrontendCode.query, Buffer.from(`${sql.replaceAll('\0', '')}\0`, 'utf8'));
}

/** Parse ('P'). */
export function encodeParse(name: string, sql: string, paramTypes: readonly number[]): Buffer {
  const head = Buffer.from(`${name}\0${sql.replaceAll('\0', '')}\0`, 'utf8');
  const types = Buffer.allocUnsafe(2 + 4 * paramTypes.length);
  types.writeInt16BE(paramTypes.length, 0);
  paramTypes.forEach((t, i) => {
    types.writeUInt32BE(t, 2 + 4 * i);
  });
  return frame(FrontendCode.parse, Buffer.concat([head, types]));
}
