/** @hoop/shared: tunnel protocol, message types, errors, clock and logger shared by every package. */
export { type Clock, FakeClock, systemClock, type TimerHandle } from './clock.js';
export {
  type ConnectionTarget,
  type ConnectionType,
  type CredentialSpec,
  connectionTypes,
  isConnectionType,
  parseCredentialRef,
  type TargetTlsMode,
} from './connection.js';
export {
  type ErrorCode,
  ErrorCodes,
  ExitCode,
  errorCodeFromWsClose,
  HoopError,
  isErrorCode,
  toHoopError,
} from './errors.js';
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  redact,
  silentLogger,
} from './logger.js';
