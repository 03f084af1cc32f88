/**
 * The native Postgres endpoint (HOOP_PG_LISTEN): plain psql, with no hoop CLI, reaches a
 * connection through the broker —
 *
 *   psql "host=broker port=15432 user=<connection> password=<hoop token> dbname=…"
 *
 * The startup is the shared listener's (`startPgListener`: SSLRequest, a cleartext password
 * that must be a valid hoop token, never logged). Then the broker opens a
 * tunnel stream to the connection's agent, exactly as `hoop connect` does but over an in-process
 * socket to the broker's own hub (`attach`), sends the client's startup on (minus the password),
 * and relays. It peeks at the session's first messages only to learn the cancel key, so a
 * CancelRequest arriving on its own connection reaches the session.
 */
import { pipeline } from 'node:stream';
import {
  cancelRequest,
  PacketReader,
  type PgListenerTls,
  type PgLogin,
  startPgListener,
  startupMessage,
} from '@hoop/agent/postgres-wire';
import {
  type Clock,
  HoopError,
  type Logger,
  type OpenConnectionMessage,
  systemClock,
  TunnelEndpoint,
  type TunnelLimits,
  type TunnelStream,
  toHoopError,
  type WebSocketLike,
} from '@hoop/shared';

export interface PostgresEndpointOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Checks a hoop token and, when it is valid, joins a tunnel for its holder to the broker's hub
   * (the other end of `socket`): sessions then go through the hub like any client's.
   */
  readonly attach: (token: string) => Promise<{ name: string; socket: WebSocketLike } | undefined>;
  /** The broker's tunnel limits (the hub enforces them on this tunnel too). */
  readonly limits: TunnelLimits;
  readonly clock?: Clock;
  readonly logger: Logger;
  readonly handshakeTimeoutMs?: number;
  readonly tls?: PgListenerTls;
  /** Live cancel keys remembered (oldest forgotten first). */
  readonly maxCancelKeys?: number;
}

export interface PostgresEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

interface CancelRoute {
  readonly connection: string;
  readonly token: string;
}

const CODE_BACKEND_KEY = 0x4b; // 'K'
const CODE_READY = 0x5a; // 'Z'

export async function startPostgresEndpoint(
  options: PostgresEndpointOptions,
): Promise<PostgresEndpoint> {
  const cancels = new Map<string, CancelRoute>();
  const maxCancelKeys = options.maxCancelKeys ?? 100_000;
  const log = options.logger.child({ component: 'pg-endpoint' });

  /** Opens a session for the holder of `token`, on a tunnel of its own that ends with it. */
  const openSession = async (
    token: string,
    message: OpenConnectionMessage,
  ): Promise<{ user: string; stream: TunnelStream; session: string }> => {
    const attached =
      token.length > 0 && token.length <= 8192 ? await options.attach(token) : undefined;
    if (attached === undefined) {
      throw new HoopError('AUTH_INVALID_TOKEN', 'the password is not a valid hoop token', {
        hint: 'Use a hoop token as the password (HOOP_TOKEN or an API key); the user name is the connection.',
      });
    }
    const tunnel = new TunnelEndpoint(attached.socket, {
      role: 'cli',
      limits: options.limits,
      clock: options.clock ?? systemClock,
      logger: log,
      name: 'native',
    });
    try {
      const { stream, session } = await tunnel.open(message);
      stream.on('close', () => tunnel.close());
      return { user: attached.name, stream, session };
    } catch (err) {
      tunnel.close();
      throw err;
    }
  };

  /** Opens the login's session through the hub, then relays (peeking at its cancel key). */
  const login = async (login: PgLogin): Promise<void> => {
    const { socket, connection, token, rest } = login;
    const { user, stream, session } = await openSession(token, {
      t: 'open',
      connection,
      client: `native ${login.peer}`,
    });
    stream.on('error', () => {});
    log.info('native session', { connection, user, session });
    stream.write(startupMessage(login.parameters));
    if (rest.length > 0) stream.write(rest);

    // Until ReadyForQuery, read the session's messages to learn its cancel key.
    const reader = new PacketReader({
      side: 'target',
      maxStartupBytes: 10_000,
      maxMessageBytes: 1 << 20,
    });
    let key: string | undefined;
    const peek = (chunk: Buffer): void => {
      reader.push(chunk);
      for (let m = reader.nextFrame(); m !== undefined; m = reader.nextFrame()) {
        socket.write(m.frame);
        if (m.code === CODE_BACKEND_KEY && m.body.length >= 8) {
          key = cancelKey(m.body.readInt32BE(0), m.body.subarray(4));
          if (cancels.size >= maxCancelKeys) cancels.delete(cancels.keys().next().value as string);
          cancels.set(key, { connection, token });
        }
        if (m.code === CODE_READY) {
          // Handshake seen: from here on the broker only relays.
          stream.off('data', peek);
          const tail = reader.takeRemaining();
          if (tail.length > 0) socket.write(tail);
          pipeline(stream, socket, () => {});
          return;
        }
      }
    };
    stream.on('data', peek);
    pipeline(socket, stream, () => {
      if (key !== undefined) cancels.delete(key);
    });
    socket.resume();
  };

  const forwardCancel = async (route: CancelRoute, bytes: Buffer): Promise<void> => {
    try {
      const { stream } = await openSession(route.token, {
        t: 'open',
        connection: route.connection,
        client: 'native cancel',
      });
      stream.on('error', () => {});
      await new Promise<void>((resolve) => stream.end(bytes, () => resolve()));
      await new Promise((r) => setTimeout(r, 200));
      stream.destroy();
    } catch (err) {
      log.warn('could not forward a cancel request', { code: toHoopError(err).code });
    }
  };

  const listener = await startPgListener({
    host: options.host,
    port: options.port,
    logger: log,
    ...(options.handshakeTimeoutMs === undefined
      ? {}
      : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    login,
    cancel: async (processId, secretKey) => {
      const route = cancels.get(cancelKey(processId, secretKey));
      if (route !== undefined) await forwardCancel(route, cancelRequest(processId, secretKey));
    },
  });
  log.info('native Postgres endpoint listening', { host: options.host, port: listener.port });
  return listener;
}

function cancelKey(processId: number, secret: Buffer): string {
  return `${processId}:${secret.toString('hex')}`;
}
