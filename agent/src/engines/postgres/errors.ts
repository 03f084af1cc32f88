/**
 * Typed failures of the Postgres engine. Each one is a HoopError (stable `code` for the CLI,
 * broker and audit) plus a stable `reason` for this engine and, when the client should be told,
 * the ErrorResponse it gets (SQLSTATE and message). Messages never carry a password.
 */
import { type ErrorCode, HoopError } from '@hoop/shared';
import { type Severity, SqlState } from './messages.js';

/** What a client is told in an ErrorResponse. */
export interface ErrorResponseFields {
  readonly severity: Severity;
  /** SQLSTATE, five characters. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

/** Stable reasons, one per way a Postgres session can fail. */
export const PgFailure = {
  /** A startup packet over the `maxStartupBytes` limit. */
  startupTooLarge: 'STARTUP_TOO_LARGE',
  /** A typed message over the `maxMessageBytes` limit. */
  messageTooLarge: 'MESSAGE_TOO_LARGE',
  malformed: 'MALFORMED_MESSAGE',
  unsupportedProtocol: 'UNSUPPORTED_PROTOCOL',
  replicationRefused: 'REPLICATION_REFUSED',
  unexpectedMessage: 'UNEXPECTED_MESSAGE',
  /** The peer closed before the handshake finished. */
  closed: 'CLOSED',
  timeout: 'TIMEOUT',
  aborted: 'ABORTED',
  dialFailed: 'DIAL_FAILED',
  tlsRefused: 'TLS_REFUSED',
  tlsFailed: 'TLS_FAILED',
  passwordRequired: 'PASSWORD_REQUIRED',
  authRejected: 'AUTH_REJECTED',
  authUnsupported: 'AUTH_UNSUPPORTED',
  scramFailed: 'SCRAM_FAILED',
  sessionRefused: 'SESSION_REFUSED',
  /** The connection's policy has a part this engine cannot enforce. */
  policyUnenforceable: 'POLICY_UNENFORCEABLE',
  /** The client pipelined more messages than `maxPendingMessages` without reading answers. */
  tooManyPending: 'TOO_MANY_PENDING',
} as const;
export type PgFailure = (typeof PgFailure)[keyof typeof PgFailure];

/** Which end of the agent a failure came from. */
export type PgSide = 'client' | 'target';

const CLIENT_HINT =
  'The client sent bytes that are not valid PostgreSQL protocol: connect with a PostgreSQL client (psql, pg, JDBC).';

export class PostgresEngineError extends HoopError {
  readonly reason: PgFailure;
  readonly side: PgSide;
  /** The ErrorResponse the client should get, when there is still a client to tell. */
  readonly response: ErrorResponseFields | undefined;

  constructor(
    code: ErrorCode,
    reason: PgFailure,
    side: PgSide,
    message: string,
    options?: { response?: ErrorResponseFields; hint?: string; cause?: unknown },
  ) {
    super(code, message, {
      hint:
        options?.hint ??
        (side === 'client' && code === 'INVALID_REQUEST' ? CLIENT_HINT : undefined),
      cause: options?.cause,
    });
    this.reason = reason;
    this.side = side;
    this.response = options?.response;
  }
}

/**
 * A protocol violation by `side`: for the client that is a FATAL 08P01 it gets told about; for
 * the target it is TARGET_PROTOCOL_ERROR and the client gets a generic FATAL.
 */
export function protocolError(
  side: PgSide,
  reason: PgFailure,
  message: string,
  sqlstate: string = SqlState.protocolViolation,
): PostgresEngineError {
  if (side === 'client') {
    return new PostgresEngineError('INVALID_REQUEST', reason, side, message, {
      response: { severity: 'FATAL', code: sqlstate, message: `hoop: ${message}` },
    });
  }
  return new PostgresEngineError('TARGET_PROTOCOL_ERROR', reason, side, message, {
    response: {
      severity: 'FATAL',
      code: SqlState.connectionFailure,
      message: `hoop: the target broke the PostgreSQL protocol: ${message}`,
    },
  });
}

/** What to tell the client about any failure, including ones that are not ours. */
export function responseFor(err: unknown): ErrorResponseFields {
  if (err instanceof PostgresEngineError && err.response !== undefined) return err.response;
  if (err instanceof HoopError) {
    const code =
      err.code === 'TARGET_UNREACHABLE'
        ? SqlState.sqlclientUnableToEstablishSqlconnection
        : err.code === 'TARGET_AUTH_FAILED' || err.code === 'SECRET_UNAVAILABLE'
          ? SqlState.invalidAuthorizationSpecification
          : err.code === 'TARGET_PROTOCOL_ERROR'
            ? SqlState.connectionFailure
            : SqlState.internalError;
    return { severity: 'FATAL', code, message: `hoop: ${err.message}`, hint: err.hint };
  }
  return {
    severity: 'FATAL',
    code: SqlState.internalError,
    message: 'hoop: internal error in the agent',
  };
}

/**
 * What the client is told when the session is ended from outside (grant expired or revoked,
 * identity disabled, agent stopping): a FATAL ErrorResponse with the reason and what to do next,
 * so psql prints it instead of "server closed the connection unexpectedly".
 */
export function terminationResponse(reason: unknown): ErrorResponseFields | undefined {
  if (!(reason instanceof HoopError)) return undefined;
  return {
    severity: 'FATAL',
    code: '57P01',
    message: `hoop: ${reason.message} (${reason.code})`,
    hint: reason.hint,
  };
}
