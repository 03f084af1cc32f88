/**
 * The agent's login to a target on a dialed connection: StartupMessage with the connection's user
 * and database (plus what the client forwards), authentication with the connection's credential,
 * then the target's greeting — ParameterStatus…, BackendKeyData, ReadyForQuery — collected, not
 * yet shown to anyone. A session passes the greeting to its client at once; the warm pool
 * (warm-pool.ts) keeps it until a session claims the connection.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { Socket } from 'node:net';
import type { Logger } from '@hoop/shared';
import { authenticateToTarget, type TargetAuthMethod, targetRefusal } from './auth.js';
import type { TargetConnection } from './dial.js';
import { BackendCode } from './messages.js';
import { PacketReader, type PgMessage } from './reader.js';
import { StreamSource } from './source.js';
import { startupMessage } from './writer.js';

/** A target connection at its first ReadyForQuery, no client byte sent on it yet. */
export interface LoggedInTarget {
  readonly socket: Socket;
  readonly encrypted: boolean;
  readonly method: TargetAuthMethod;
  /** What the target sent after AuthenticationOk, ReadyForQuery last. */
  readonly greeting: readonly PgMessage[];
  /** Bytes the target sent after ReadyForQuery (none from a well-behaved server). */
  readonly leftover: Buffer;
}

export interface LoginOptions {
  /** StartupMessage parameters, user and database first (startup.ts targetStartupParameters). */
  readonly parameters: ReadonlyArray<readonly [string, string]>;
  readonly user: string;
  readonly password: string | undefined;
  readonly maxStartupBytes: number;
  readonly maxHandshakeMessageBytes: number;
  readonly maxScramIterations: number;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** Logs in on `conn`. Rejects with a PostgresEngineError; the caller destroys the socket. */
export async function logIn(
  conn: TargetConnection,
  options: LoginOptions,
): Promise<LoggedInTarget> {
  const { socket } = conn;
  const source = new StreamSource(
    socket,
    new PacketReader({
      side: 'target',
      maxStartupBytes: options.maxStartupBytes,
      maxMessageBytes: options.maxHandshakeMessageBytes,
    }),
    'target',
    options.signal,
  );
  try {
    socket.write(startupMessage(options.parameters));
    const method = await authenticateToTarget(source, socket, {
      user: options.user,
      password: options.password,
      logger: options.logger,
      maxScramIterations: options.maxScramIterations,
    });
    const greeting: PgMessage[] = [];
    for (;;) {
      const message = await source.message();
      if (message.code === BackendCode.errorResponse) throw targetRefusal(message.body, 'startup');
      greeting.push(message);
      if (message.code === BackendCode.readyForQuery) {
        return { socket, encrypted: conn.encrypted, method, greeting, leftover: source.detach() };
      }
    }
  } finally {
    source.detach();
  }
}
