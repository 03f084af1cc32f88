/**
 * Control messages: msgpack bodies of CONTROL frames, a discriminated union on `t`, grouped by
 * direction. Every decoded body is validated before anyone sees it; anything else is
 * FRAME_MALFORMED. Bump PROTOCOL_VERSION on any incompatible change.
 */
import { Packr } from 'msgpackr';
import type { ConnectionTarget } from '../connection.js';
import { type ErrorCode, HoopError, isErrorCode } from '../errors.js';
import type { AuditEvent } from '../policy/audit.js';
import type { Policy } from '../policy/document.js';

export const PROTOCOL_VERSION = 1;

export const TunnelRole = { agent: 'agent', cli: 'cli', broker: 'broker' } as const;
export type TunnelRole = (typeof TunnelRole)[keyof typeof TunnelRole];

/** Sent first by each side on stream 0. The broker answers the client's hello with its own. */
export interface HelloMessage {
  readonly t: 'hello';
  readonly version: number;
  readonly role: TunnelRole;
  /** Per-stream flow-control window this side grants. */
  readonly window: number;
  readonly maxFrameBytes: number;
  readonly name?: string;
  /**
   * Broker → client: DATA a client sends on a stream before its open-ok (at most
   * EARLY_DATA_MAX_BYTES) is held by the broker and passed to the agent once it may have it (see
   * `admit`), instead of being refused. A client sends early data only to a broker that says so.
   */
  readonly earlyData?: boolean;
  /**
   * Agent → broker: the agent honours `admit` (OpenSessionMessage.admit), so the broker may pass
   * a client's early data on before the session row is stored. A broker that sees no such flag
   * holds that data until the row exists, as before.
   */
  readonly admit?: boolean;
}

/** CLI → broker: open a stream to a connection. */
export interface OpenConnectionMessage {
  readonly t: 'open';
  readonly connection: string;
  /** Free text describing the client (e.g. local address); for the audit trail. */
  readonly client?: string;
  /**
   * What happens to a statement held for review on this stream (`hoop exec`): `hold` (the
   * default) waits for the decision; `return` creates the review and refuses the statement at
   * once as pending, so the client can exit and run it again with `review`.
   */
  readonly reviews?: StatementReviewMode;
  /**
   * An approved statement review this stream runs: the broker checks at open that it is the
   * caller's, for this connection and approved, and when the agent holds a statement, that the
   * statement is the reviewed one; it is then used up (a second use is REVIEW_CONSUMED).
   */
  readonly review?: string;
  /**
   * The agent's direct endpoint opens its client's session (see DIRECT_TICKET_RE): the agent
   * serves it to a client connected to the agent itself, so no data crosses this stream. The
   * broker authorizes and records the session as any other and passes the ticket on in
   * `open-session`; an agent with no client waiting under the ticket refuses the session.
   */
  readonly direct?: string;
}

/** A direct session's ticket: 32 random bytes, base64url (unguessable, so not forgeable). */
export const DIRECT_TICKET_RE = /^[A-Za-z0-9_-]{43}$/;

export const StatementReviewMode = { hold: 'hold', return: 'return' } as const;
export type StatementReviewMode = (typeof StatementReviewMode)[keyof typeof StatementReviewMode];

/** Broker → agent: serve a session on this stream. */
export interface OpenSessionMessage {
  readonly t: 'open-session';
  readonly session: string;
  readonly target: ConnectionTarget;
  readonly user: string;
  /** The connection's policy; the agent validates it again and refuses what it can't enforce. */
  readonly policy?: Policy;
  /** The grant (JWT) the session runs on; the agent verifies it against the broker's JWKS. */
  readonly grant?: string;
  /**
   * The session row is still being stored: the agent may log in to the target with the client's
   * startup, but passes nothing else between client and target until the broker's `admit` on
   * this stream (and if the row cannot be stored, the broker closes the stream instead).
   */
  readonly admit?: boolean;
  /** The client's `direct` ticket: serve the session to the agent's own client holding it. */
  readonly direct?: string;
}

/** Broker → agent on a session's stream: its row is stored, the session may run. */
export interface AdmitMessage {
  readonly t: 'admit';
}

/**
 * Agent → broker on stream 0: audit events from engines. With `seq` (the agent's spool
 * sequence of this batch's first event), the broker answers `audit-ack` once stored.
 */
export interface AuditBatchMessage {
  readonly t: 'audit';
  readonly events: readonly AuditEvent[];
  readonly seq?: number;
}

/** Broker → agent on stream 0: every event up to and including `seq` is stored. */
export interface AuditAckMessage {
  readonly t: 'audit-ack';
  readonly seq: number;
}

/** Broker → agent on a session's stream, or stream 0 for all: end this session now. */
export interface TerminateMessage {
  readonly t: 'terminate';
  readonly session: string;
  readonly error: ErrorBody;
}

/** Answer to open / open-session. */
export interface OpenOkMessage {
  readonly t: 'open-ok';
  readonly session: string;
}

export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint?: string;
}

export interface OpenErrorMessage {
  readonly t: 'open-error';
  readonly error: ErrorBody;
}

/** Either side ends a stream; `error` says why when it was not a clean end. */
export interface CloseMessage {
  readonly t: 'close';
  readonly error?: ErrorBody;
}

/** Tunnel-level error, sent on stream 0 just before the sender closes the WebSocket. */
export interface TunnelErrorMessage {
  readonly t: 'error';
  readonly error: ErrorBody;
}

/** Longest statement an agent may hold for review (REVIEW_STATEMENT_TOO_LONG past it). */
export const MAX_REVIEW_STATEMENT_BYTES = 65_536;

/**
 * Agent → broker on stream 0: a session's statement needs approval. `ref` is the agent's id for
 * this request (unique per agent connection); the broker answers `review-pending`, later
 * `review-decision`, with the same `ref`.
 */
export interface ReviewRequestMessage {
  readonly t: 'review-request';
  readonly session: string;
  readonly ref: number;
  readonly statement: string;
}

/**
 * Broker → agent on stream 0: the review for `ref` exists (or could not be created, or the
 * stream's approved review cannot be used for it: `error`). With `detached`, the client asked
 * not to wait (`reviews: 'return'`): no decision follows, and the statement is refused as
 * pending.
 */
export interface ReviewPendingMessage {
  readonly t: 'review-pending';
  readonly ref: number;
  readonly review?: string;
  readonly error?: ErrorBody;
  readonly detached?: boolean;
}

/** Broker → agent on stream 0: the review for `ref` was decided. */
export interface ReviewDecisionMessage {
  readonly t: 'review-decision';
  readonly ref: number;
  readonly review: string;
  readonly status: 'approved' | 'rejected' | 'expired' | 'revoked';
  readonly by?: string;
  readonly reason?: string;
}

export type ControlMessage =
  | HelloMessage
  | OpenConnectionMessage
  | OpenSessionMessage
  | AdmitMessage
  | OpenOkMessage
  | OpenErrorMessage
  | CloseMessage
  | TunnelErrorMessage
  | AuditBatchMessage
  | AuditAckMessage
  | TerminateMessage
  | ReviewRequestMessage
  | ReviewPendingMessage
  | ReviewDecisionMessage;

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeControl(message: ControlMessage): Buffer {
  return packr.pack(message);
}

function malformed(what: string): HoopError {
  return new HoopError('FRAME_MALFORMED', `malformed control message: ${what}`);
}

type Obj = Record<string, unknown>;

function str(o: Obj, key: string, optional = false): void {
  const v = o[key];
  if (v === undefined && optional) return;
  if (typeof v !== 'string' || v.length > 4096) throw malformed(`field ${key} must be a string`);
}

function int(o: Obj, key: string): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw malformed(`field ${key} must be a non-negative integer`);
  }
}

/** An optional boolean field. */
function bool(o: Obj, key: string): void {
  const v = o[key];
  if (v !== undefined && typeof v !== 'boolean') throw malformed(`field ${key} must be a boolean`);
}

function directTicket(o: Obj): void {
  const v = o['direct'];
  if (v !== undefined && (typeof v !== 'string' || !DIRECT_TICKET_RE.test(v))) {
    throw malformed('field direct must be a ticket (43 base64url characters)');
  }
}

function errorBody(o: Obj, key: string, optional = false): void {
  const v = o[key];
  if (v === undefined && optional) return;
  if (v === null || typeof v !== 'object') throw malformed(`field ${key} must be an error object`);
  const e = v as Obj;
  if (!isErrorCode(e['code'])) throw malformed(`unknown error code ${String(e['code'])}`);
  str(e, 'message');
  str(e, 'hint', true);
}

function target(o: Obj, key: string): void {
  const v = o[key];
  if (v === null || typeof v !== 'object') throw malformed(`field ${key} must be an object`);
  const t = v as Obj;
  for (const k of ['name', 'type', 'host', 'user', 'database', 'tls']) str(t, k);
  int(t, 'port');
  const c = t['credential'];
  if (c === null || typeof c !== 'object') throw malformed('target credential must be an object');
  const cred = c as Obj;
  if (cred['kind'] === 'password') str(cred, 'value');
  else if (cred['kind'] === 'env') str(cred, 'name');
  else if (cred['kind'] !== 'none') throw malformed('unknown credential kind');
}

/** Decodes and validates one control body. Throws FRAME_MALFORMED on anything unexpected. */
export function decodeControl(body: Buffer): ControlMessage {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch {
    throw malformed('body is not msgpack');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw malformed('body is not an object');
  }
  const o = value as Obj;
  switch (o['t']) {
    case 'hello':
      int(o, 'version');
      str(o, 'role');
      if (!Object.hasOwn(TunnelRole, o['role'] as string)) throw malformed('unknown role');
      int(o, 'window');
      int(o, 'maxFrameBytes');
      str(o, 'name', true);
      bool(o, 'earlyData');
      bool(o, 'admit');
      break;
    case 'open':
      str(o, 'connection');
      str(o, 'client', true);
      str(o, 'review', true);
      directTicket(o);
      if (o['reviews'] !== undefined && !Object.hasOwn(StatementReviewMode, o['reviews'] as string))
        throw malformed('unknown reviews mode');
      break;
    case 'open-session':
      str(o, 'session');
      str(o, 'user');
      target(o, 'target');
      str(o, 'grant', true);
      bool(o, 'admit');
      directTicket(o);
      if (o['policy'] !== undefined && (o['policy'] === null || typeof o['policy'] !== 'object')) {
        throw malformed('field policy must be an object');
      }
      break;
    case 'audit-ack':
      int(o, 'seq');
      break;
    case 'terminate':
      str(o, 'session');
      errorBody(o, 'error');
      break;
    case 'audit':
      if (o['seq'] !== undefined) int(o, 'seq');
      if (!Array.isArray(o['events']) || o['events'].length > 10_000)
        throw malformed('field events must be a list');
      for (const event of o['events'] as unknown[]) {
        if (event === null || typeof event !== 'object')
          throw malformed('audit event must be an object');
        const e = event as Obj;
        str(e, 'type');
        str(e, 'session');
        int(e, 'at');
      }
      break;
    case 'open-ok':
      str(o, 'session');
      break;
    case 'admit':
      break;
    case 'review-request': {
      str(o, 'session');
      int(o, 'ref');
      const statement = o['statement'];
      if (
        typeof statement !== 'string' ||
        Buffer.byteLength(statement) > MAX_REVIEW_STATEMENT_BYTES
      ) {
        throw malformed(
          `field statement must be a string of at most ${MAX_REVIEW_STATEMENT_BYTES} bytes`,
        );
      }
      break;
    }
    case 'review-pending':
      int(o, 'ref');
      str(o, 'review', true);
      errorBody(o, 'error', true);
      if (o['detached'] !== undefined && typeof o['detached'] !== 'boolean')
        throw malformed('field detached must be a boolean');
      if ((o['review'] === undefined) === (o['error'] === undefined)) {
        throw malformed('review-pending needs exactly one of review, error');
      }
      break;
    case 'review-decision':
      int(o, 'ref');
      str(o, 'review');
      if (!['approved', 'rejected', 'expired', 'revoked'].includes(o['status'] as string)) {
        throw malformed('unknown review status');
      }
      str(o, 'by', true);
      str(o, 'reason', true);
      break;
    case 'open-error':
    case 'error':
      errorBody(o, 'error');
      break;
    case 'close':
      errorBody(o, 'error', true);
      break;
    default:
      throw malformed(`unknown type ${JSON.stringify(o['t'])}`);
  }
  return o as unknown as ControlMessage;
}

export function errorBodyOf(err: HoopError): ErrorBody {
  return { code: err.code, message: err.message, hint: err.hint };
}

export function hoopErrorOf(body: ErrorBody): HoopError {
  return new HoopError(
    body.code,
    body.message,
    body.hint === undefined ? undefined : { hint: body.hint },
  );
}
