/**
 * Refusing a Postgres client before any session exists (the CLI's local listener when the broker
 * or agent says no): take the client's startup like a server would (answering SSLRequest with
 * 'N'), then send one FATAL ErrorResponse that psql prints — message, SQLSTATE and the hint that
 * says what to do next — and close. A CancelRequest gets no answer, as postgres does.
 */
import type { Duplex } from 'node:stream';
import type { ErrorCode, HoopError } from '@hoop/shared';
import { SqlState } from './messages.js';
import { PacketReader } from './reader.js';
import { StreamSource } from './source.js';
import { readClientStartup } from './startup.js';
import { errorResponse } from './writer.js';

const sqlStateFor: Partial<Record<ErrorCode, string>> = {
  AUTH_REQUIRED: SqlState.invalidAuthorizationSpecification,
  AUTH_INVALID_TOKEN: SqlState.invalidAuthorizationSpecification,
  AUTH_FORBIDDEN: SqlState.insufficientPrivilege,
  CONNECTION_NOT_FOUND: '3D000',
  NOT_FOUND: '3D000',
  AGENT_OFFLINE: SqlState.sqlclientUnableToEstablishSqlconnection,
  BROKER_UNREACHABLE: SqlState.sqlclientUnableToEstablishSqlconnection,
  TARGET_UNREACHABLE: SqlState.sqlclientUnableToEstablishSqlconnection,
  TUNNEL_CLOSED: SqlState.connectionFailure,
  HEARTBEAT_TIMEOUT: SqlState.connectionFailure,
};

export async function refusePostgresClient(
  client: Duplex,
  error: HoopError,
  timeoutMs = 5_000,
): Promise<void> {
  const source = new StreamSource(
    client,
    new PacketReader({ side: 'client', maxStartupBytes: 10_000, maxMessageBytes: 1 << 20 }),
    'client',
    AbortSignal.timeout(timeoutMs),
  );
  try {
    const hello = await readClientStartup(source, client);
    if (hello?.kind !== 'startup') return;
    await new Promise<void>((resolve) => {
      client.end(
        errorResponse({
          severity: 'FATAL',
          code: sqlStateFor[error.code] ?? SqlState.connectionFailure,
          message: `hoop: ${error.message} (${error.code})`,
          hint: error.hint,
        }),
        () => resolve(),
      );
    });
  } catch {
    // The client went away or sent garbage: nothing more to tell it.
  } finally {
    source.detach();
  }
}
