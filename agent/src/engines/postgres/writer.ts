/**
 * Serializers for the PostgreSQL v3 messages the agent writes, to the client (as a server) and to
 * the target (as a client). Every integer is big-endian; strings are NUL-terminated UTF-8.
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import type { ErrorResponseFields } from './errors.js';
import { AuthCode, BackendCode, ErrorField, FrontendCode, StartupCode } from './messages.js';

/** A NUL-terminated UTF-8 string. NULs inside `value` would end it early, so they are dropped. */
function cstring(value: string): Buffer {
  return Buffer.from(`${value.replaceAll('\0', '')}\0`, 'utf8');
}

/**
 * A typed message:
 *   Byte1  type
 *   Int32  length, counting itself and the body but not the type byte
 *   Byte[] body
 */
export function encodeMessage(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/**
 * An untyped startup-phase packet:
 *   Int32  length, counting itself
 *   Int32  request code (protocol version, or SSL/GSSENC/cancel request code)
 *   Byte[] body
 */
function encodePacket(requestCode: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(requestCode, 4);
  body.copy(out, 8);
  return out;
}

// ---- frontend (agent → target) ----

/** StartupMessage: protocol 3.0 then `name\0value\0` pairs and a final `\0`. */
export function startupMessage(parameters: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of parameters) parts.push(cstring(name), cstring(value));
  parts.push(Buffer.from([0]));
  return encodePacket(StartupCode.protocol3, Buffer.concat(parts));
}

/** SSLRequest: length 8, code 80877103. */
export function sslRequest(): Buffer {
  return encodePacket(StartupCode.sslRequest);
}

/** CancelRequest: length 16 (protocol 3.0), code 80877102, Int32 process id, secret key bytes. */
export function cancelRequest(processId: number, secretKey: Buffer): Buffer {
  const body = Buffer.allocUnsafe(4 + secretKey.length);
  body.writeInt32BE(processId, 0);
  secretKey.copy(body, 4);
  return encodePacket(StartupCode.cancelRequest, body);
}

/** PasswordMessage ('p'): the password (cleartext or `md5…` hash) as a string. */
export function passwordMessage(password: string): Buffer {
  return encodeMessage(FrontendCode.password, cstring(password));
}

/** SASLInitialResponse ('p'): mechanism name, Int32 length of the data (-1 for none), data. */
export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const length = Buffer.allocUnsafe(4);
  length.writeInt32BE(data.length, 0);
  return encodeMessage(FrontendCode.password, Buffer.concat([cstring(mechanism), length, data]));
}

/** SASLResponse ('p'): the mechanism's data, nothing else. */
export function saslResponse(data: Buffer): Buffer {
  return encodeMessage(FrontendCode.password, data);
}

/** Terminate ('X'): empty body. */
export function terminate(): Buffer {
  return encodeMessage(FrontendCode.terminate);
}

// ---- backend (agent → client) ----

/** The single byte answering SSLRequest / GSSENCRequest: 'S' (go ahead) or 'N' (no). */
export function sslAnswer(accept: boolean): Buffer {
  return Buffer.from(accept ? 'S' : 'N', 'latin1');
}

/** AuthenticationOk ('R'): Int32 0. */
export function authenticationOk(): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32BE(AuthCode.ok, 0);
  return encodeMessage(BackendCode.authentication, body);
}

/** BackendKeyData ('K'): Int32 process id, then the secret key (4 bytes in protocol 3.0). */
export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  const body = Buffer.allocUnsafe(4 + secretKey.length);
  body.writeInt32BE(processId, 0);
  secretKey.copy(body, 4);
  return encodeMessage(BackendCode.backendKeyData, body);
}

/**
 * NegotiateProtocolVersion ('v'): Int32 newest minor version supported, Int32 count of protocol
 * options not recognized, then each option name as a string.
 */
export function negotiateProtocolVersion(minor: number, unrecognized: readonly string[]): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(minor, 0);
  head.writeInt32BE(unrecognized.length, 4);
  return encodeMessage(
    BackendCode.negotiateProtocolVersion,
    Buffer.concat([head, ...unrecognized.map(cstring)]),
  );
}

/** NoticeResponse ('N'): the same fields as ErrorResponse, severity NOTICE. */
export function noticeResponse(message: string): Buffer {
  const e = errorResponse({ severity: 'NOTICE', code: '00000', message });
  e[0] = BackendCode.noticeResponse;
  return e;
}

/**
 * ErrorResponse ('E'): fields of Byte1 type + string value, ended by a zero byte. hoop sends
 * S (severity), V (severity, not localized), C (SQLSTATE), M (message), then D (detail) and
 * H (hint) when given.
 */
export function errorResponse(fields: ErrorResponseFields): Buffer {
  const parts: Buffer[] = [];
  const add = (type: number, value: string): void => {
    parts.push(Buffer.from([type]), cstring(value));
  };
  add(ErrorField.severity, fields.severity);
  add(ErrorField.severityNonLocalized, fields.severity);
  add(ErrorField.code, fields.code);
  add(ErrorField.message, fields.message);
  if (fields.detail !== undefined) add(ErrorField.detail, fields.detail);
  if (fields.hint !== undefined) add(ErrorField.hint, fields.hint);
  parts.push(Buffer.from([0]));
  return encodeMessage(BackendCode.errorResponse, Buffer.concat(parts));
}
