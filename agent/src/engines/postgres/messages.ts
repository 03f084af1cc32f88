/**
 * PostgreSQL wire protocol v3 constants, grouped by direction.
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Request codes of the untyped packets a client may send first (int32 after the length). */
export const StartupCode = {
  /** Protocol 3.0: major 3 in the high 16 bits, minor 0 in the low 16 bits. */
  protocol3: 196608,
  cancelRequest: 80877102,
  sslRequest: 80877103,
  gssEncRequest: 80877104,
} as const;

/** Type bytes of messages the client (frontend) sends after startup. */
export const FrontendCode = {
  bind: 0x42, // 'B'
  close: 0x43, // 'C'
  copyData: 0x64, // 'd'
  copyDone: 0x63, // 'c'
  copyFail: 0x66, // 'f'
  describe: 0x44, // 'D'
  execute: 0x45, // 'E'
  flush: 0x48, // 'H'
  functionCall: 0x46, // 'F'
  parse: 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse and SASLResponse all use 'p'. */
  password: 0x70, // 'p'
  query: 0x51, // 'Q'
  sync: 0x53, // 'S'
  terminate: 0x58, // 'X'
} as const;

/** Type bytes of messages the server (backend) sends. */
export const BackendCode = {
  authentication: 0x52, // 'R'
  backendKeyData: 0x4b, // 'K'
  bindComplete: 0x32, // '2'
  closeComplete: 0x33, // '3'
  commandComplete: 0x43, // 'C'
  copyData: 0x64, // 'd'
  copyDone: 0x63, // 'c'
  copyInResponse: 0x47, // 'G'
  copyOutResponse: 0x48, // 'H'
  dataRow: 0x44, // 'D'
  emptyQueryResponse: 0x49, // 'I'
  errorResponse: 0x45, // 'E'
  negotiateProtocolVersion: 0x76, // 'v'
  noData: 0x6e, // 'n'
  noticeResponse: 0x4e, // 'N'
  notificationResponse: 0x41, // 'A'
  parameterDescription: 0x74, // 't'
  parameterStatus: 0x53, // 'S'
  parseComplete: 0x31, // '1'
  portalSuspended: 0x73, // 's'
  readyForQuery: 0x5a, // 'Z'
  rowDescription: 0x54, // 'T'
} as const;

/** The int32 that follows 'R' in an Authentication* message. */
export const AuthCode = {
  ok: 0,
  kerberosV5: 2,
  cleartextPassword: 3,
  md5Password: 5,
  gss: 7,
  gssContinue: 8,
  sspi: 9,
  sasl: 10,
  saslContinue: 11,
  saslFinal: 12,
} as const;

/** One-byte answers to SSLRequest / GSSENCRequest. */
export const SslResponse = {
  accept: 0x53, // 'S'
  refuse: 0x4e, // 'N'
} as const;

/** Field type bytes of ErrorResponse / NoticeResponse. */
export const ErrorField = {
  severity: 0x53, // 'S' (localized)
  severityNonLocalized: 0x56, // 'V'
  code: 0x43, // 'C' SQLSTATE
  message: 0x4d, // 'M'
  detail: 0x44, // 'D'
  hint: 0x48, // 'H'
} as const;

/** SQLSTATE codes hoop itself reports to clients. https://www.postgresql.org/docs/current/errcodes-appendix.html */
export const SqlState = {
  protocolViolation: '08P01',
  sqlclientUnableToEstablishSqlconnection: '08001',
  connectionFailure: '08006',
  invalidAuthorizationSpecification: '28000',
  invalidPassword: '28P01',
  featureNotSupported: '0A000',
  insufficientPrivilege: '42501',
  syntaxError: '42601',
  inFailedSqlTransaction: '25P02',
  adminShutdown: '57P01',
  queryCanceled: '57014',
  programLimitExceeded: '54000',
  internalError: 'XX000',
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';

/** SCRAM mechanism name hoop speaks to targets (RFC 7677). */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
