/**
 * @hoop/agent/postgres-wire: the Postgres wire pieces the broker's native endpoint and the CLI
 * use — message reader and writer, the listener for hoop-unaware clients, refusing a client in
 * its own protocol, reading a review's error detail — without the engine behind them. Importing the package root loads every engine,
 * and the Postgres engine's SQL parser (libpg-query) instantiates its WebAssembly module as soon
 * as it is loaded: ~10–18 MiB of resident memory a process that never parses SQL should not pay.
 */
export {
  type PgListener,
  type PgListenerOptions,
  type PgListenerTls,
  type PgLogin,
  refuseLogin,
  startPgListener,
} from './engines/postgres/pg-listener.js';
export { PacketReader, type PgMessage, type StartupPacket } from './engines/postgres/reader.js';
export { parseReviewErrorDetail } from './engines/postgres/review-gate.js';
export { StreamSource } from './engines/postgres/source.js';
export {
  cancelRequest,
  encodeMessage,
  errorResponse,
  startupMessage,
} from './engines/postgres/writer.js';
export { refuseClient } from './engines/refusal.js';
