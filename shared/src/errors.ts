/**
 * Typed errors with stable codes. Every error hoop shows a user or a peer is a HoopError whose
 * `code` is stable (documented in the README's error table) and maps to exactly one HTTP status,
 * one CLI exit code and one WebSocket close code. Messages never contain secrets or tokens.
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  denied: 3,
  notFound: 4,
  agentOffline: 5,
  unreachable: 6,
  pending: 7,
  conflict: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

interface CodeInfo {
  readonly http: number;
  readonly exit: ExitCode;
  /** WebSocket close code used when this error ends a tunnel (4000-4999 are application codes). */
  readonly ws: number;
  readonly hint: string;
}

export const ErrorCodes = {
  // usage / input
  USAGE: { http: 400, exit: ExitCode.usage, ws: 4400, hint: 'Run the command with --help.' },
  INVALID_REQUEST: {
    http: 400,
    exit: ExitCode.usage,
    ws: 4400,
    hint: 'Check the request body against /api/v1/openapi.json.',
  },
  // identity
  AUTH_REQUIRED: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'Log in with `hoop login --broker URL --token T` or set HOOP_TOKEN.',
  },
  AUTH_INVALID_TOKEN: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'The token is unknown, expired or revoked: get a new one from your admin and run `hoop login`.',
  },
  GRANT_INVALID: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'The grant is not one this broker signed (or was altered): request a new one with `hoop grants request`.',
  },
  GRANT_EXPIRED: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'The grant expired: request a new one with `hoop grants request CONNECTION`.',
  },
  GRANT_REVOKED: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'The grant was revoked: ask for access again with `hoop grants request CONNECTION`.',
  },
  GRANT_WRONG_CONNECTION: {
    http: 403,
    exit: ExitCode.denied,
    ws: 4403,
    hint: 'This grant is for another connection: request one for this connection.',
  },
  OIDC_FAILED: {
    http: 401,
    exit: ExitCode.denied,
    ws: 4401,
    hint: 'The identity provider login did not complete: run `hoop login` again.',
  },
  TRUST_NO_MATCH: {
    http: 403,
    exit: ExitCode.denied,
    ws: 4403,
    hint: 'No trust policy matches this CI token (issuer, audience, subject, claims): ask an admin to add one with `hoop admin trust create`.',
  },
  PENDING_APPROVAL: {
    http: 202,
    exit: ExitCode.pending,
    ws: 4202,
    hint: 'An approver must approve the review first: `hoop reviews show ID`.',
  },
  REVIEW_NOT_APPROVED: {
    http: 403,
    exit: ExitCode.denied,
    ws: 4403,
    hint: 'The statement review was rejected or expired, so the statement did not run: ask an approver why, or run it again to ask anew.',
  },
  REVIEW_CONSUMED: {
    http: 409,
    exit: ExitCode.conflict,
    ws: 4409,
    hint: 'An approved statement review runs its statement once, and this one already has: run the statement again without --review to ask for a new review.',
  },
  REVIEW_MISMATCH: {
    http: 409,
    exit: ExitCode.conflict,
    ws: 4409,
    hint: 'That review was approved for another statement, connection or person: run exactly the reviewed SQL, or ask for a new review.',
  },
  AUTH_FORBIDDEN: {
    http: 403,
    exit: ExitCode.denied,
    ws: 4403,
    hint: 'Ask an admin for access to this resource.',
  },
  // lookups
  NOT_FOUND: { http: 404, exit: ExitCode.notFound, ws: 4404, hint: 'Check the name.' },
  CONNECTION_NOT_FOUND: {
    http: 404,
    exit: ExitCode.notFound,
    ws: 4404,
    hint: 'List the connections you can use with `hoop admin connections list`.',
  },
  AGENT_NOT_FOUND: {
    http: 404,
    exit: ExitCode.notFound,
    ws: 4404,
    hint: 'List agents with `hoop admin agents list`, or create one with `hoop admin agents create NAME`.',
  },
  ALREADY_EXISTS: {
    http: 409,
    exit: ExitCode.conflict,
    ws: 4409,
    hint: 'Pick another name, or delete the existing one first.',
  },
  // availability
  AGENT_OFFLINE: {
    http: 503,
    exit: ExitCode.agentOffline,
    ws: 4503,
    hint: 'Start the agent (`hoop agent start`) next to the target and check it can reach the broker.',
  },
  BROKER_UNREACHABLE: {
    http: 502,
    exit: ExitCode.unreachable,
    ws: 4502,
    hint: 'Check HOOP_BROKER_URL and that the broker is running (`hoop broker start` or `hoop up`).',
  },
  TARGET_UNREACHABLE: {
    http: 502,
    exit: ExitCode.unreachable,
    ws: 4502,
    hint: 'The agent could not reach the target: check the connection host and port, and that the target is up.',
  },
  TARGET_AUTH_FAILED: {
    http: 502,
    exit: ExitCode.failure,
    ws: 4502,
    hint: "The target rejected the connection's credential: update it with `hoop admin connections create` (delete first).",
  },
  TARGET_PROTOCOL_ERROR: {
    http: 502,
    exit: ExitCode.failure,
    ws: 4502,
    hint: 'The target answered something the agent does not understand; check the connection type.',
  },
  SECRET_UNAVAILABLE: {
    http: 500,
    exit: ExitCode.failure,
    ws: 4500,
    hint: "The agent could not resolve the connection's credential reference (env:NAME): set it in the agent's environment.",
  },
  UNSUPPORTED_CONNECTION_TYPE: {
    http: 400,
    exit: ExitCode.usage,
    ws: 4400,
    hint: 'Supported connection types: postgres.',
  },
  // policy
  POLICY_UNENFORCEABLE: {
    http: 422,
    exit: ExitCode.failure,
    ws: 4422,
    hint: "The agent cannot enforce this connection's policy, so it refused the session; fix the policy or upgrade the agent.",
  },
  // audit
  SPOOL_FULL: {
    http: 507,
    exit: ExitCode.failure,
    ws: 4507,
    hint: "The agent's audit spool is over its budget (HOOP_SPOOL_MAX_BYTES) or its disk failed, so it refuses recorded sessions; check that the agent reaches the broker, and the disk.",
  },
  AUDIT_CHAIN_BROKEN: {
    http: 409,
    exit: ExitCode.failure,
    ws: 4409,
    hint: 'An audit row was edited, deleted or reordered: `hoop audit verify --json` names it; restore the store from a backup and investigate.',
  },
  // tunnel protocol
  PROTOCOL_VERSION: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4001,
    hint: 'Upgrade the older of the CLI, agent and broker so they speak the same tunnel version.',
  },
  FRAME_MALFORMED: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4002,
    hint: 'The peer sent bytes that are not a tunnel frame.',
  },
  FRAME_TOO_LARGE: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4003,
    hint: 'The peer sent a frame over the negotiated maximum frame size.',
  },
  FRAME_TRUNCATED: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4004,
    hint: 'A tunnel message ended in the middle of a frame.',
  },
  FRAME_UNKNOWN_KIND: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4005,
    hint: 'The peer sent a frame kind this version does not know.',
  },
  STREAM_UNKNOWN: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4006,
    hint: 'A frame named a stream that is not open.',
  },
  WINDOW_EXCEEDED: {
    http: 400,
    exit: ExitCode.failure,
    ws: 4007,
    hint: "The peer sent more data than its stream's flow-control window allows.",
  },
  TOO_MANY_STREAMS: {
    http: 429,
    exit: ExitCode.failure,
    ws: 4008,
    hint: 'Close some sessions, or raise the tunnel maxStreams limit.',
  },
  TUNNEL_BUFFER_EXCEEDED: {
    http: 503,
    exit: ExitCode.failure,
    ws: 4009,
    hint: 'The peer is not reading; the tunnel was closed to bound memory.',
  },
  HEARTBEAT_TIMEOUT: {
    http: 504,
    exit: ExitCode.unreachable,
    ws: 4010,
    hint: 'The peer stopped answering heartbeats; it will reconnect by itself.',
  },
  TUNNEL_CLOSED: {
    http: 503,
    exit: ExitCode.unreachable,
    ws: 4011,
    hint: 'The tunnel to the broker closed; run the command again.',
  },
  STATEMENT_FAILED: {
    http: 422,
    exit: ExitCode.failure,
    ws: 4422,
    hint: 'The database refused the statement (`hoop exec`); its message and SQLSTATE say why.',
  },
  // generic
  INTERNAL: {
    http: 500,
    exit: ExitCode.failure,
    ws: 4500,
    hint: 'This is a bug in hoop; the broker log has details.',
  },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCodes, value);
}

export class HoopError extends Error {
  override readonly name = 'HoopError';
  readonly code: ErrorCode;
  /** What the user can do next; defaults to the code's hint. */
  readonly hint: string;

  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options?.hint ?? ErrorCodes[code].hint;
  }

  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }

  get exitCode(): ExitCode {
    return ErrorCodes[this.code].exit;
  }

  get wsCloseCode(): number {
    return ErrorCodes[this.code].ws;
  }

  toJSON(): { code: ErrorCode; message: string; hint: string } {
    return { code: this.code, message: this.message, hint: this.hint };
  }
}

/** Wraps anything thrown into a HoopError without leaking driver internals. */
export function toHoopError(err: unknown, fallback: ErrorCode = 'INTERNAL'): HoopError {
  if (err instanceof HoopError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new HoopError(fallback, message, { cause: err });
}

/** Maps a WebSocket close code back to the error code that produced it, when known. */
export function errorCodeFromWsClose(closeCode: number): ErrorCode | undefined {
  for (const [code, info] of Object.entries(ErrorCodes)) {
    if (info.ws === closeCode) return code as ErrorCode;
  }
  return undefined;
}
