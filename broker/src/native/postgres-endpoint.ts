/**
 * The native Postgres endpoint (HOOP_PG_LISTEN): plain psql, with no hoop CLI, reaches a
 * connection through the broker —
 *
 *   psql "host=broker port=15432 user=<connection> password=<hoop token> dbname=…"
 *
 * The broker plays the server only for the startup: it answers SSLRequest ('N'), asks for a
 * cleartext password, and checks that it is a valid hoop token (never logged). Then it opens a
 * tunnel stream to the connection's agent, exactly as `hoop connect` does but over an in-process
 * socket to the broker's own hub (`attach`), sends the client's startup on (minus the password),
 * and relays. It peeks at the session's first messages only to learn the cancel key, so a
 * CancelRequest arriving on its own connection reaches the session.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { createSecureContext, TLSSocket } from 'node:tls';
import {
  cancelRequest,
  encodeMessage,
  errorResponse,
  PacketReader,
  StreamSource,
  startupMessage,
} from '@hoop/agent/postgres-wire';
import {
  type Clock,
  type ErrorCode,
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
  /** PEM certificate and key: clients that ask for TLS get it; `require` refuses plaintext. */
  readonly tls?: {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
    readonly require?: boolean;
  };
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

const AUTH_CLEARTEXT = Buffer.from([0, 0, 0, 3]);
const CODE_AUTH = 0x52; // 'R'
const CODE_PASSWORD = 0x70; // 'p'
const CODE_BACKEND_KEY = 0x4b; // 'K'
const CODE_READY = 0x5a; // 'Z'

const sqlState: Partial<Record<ErrorCode, string>> = {
  AUTH_INVALID_TOKEN: '28P01',
  AUTH_REQUIRED: '28000',
  AUTH_FORBIDDEN: '42501',
  GRANT_INVALID: '28P01',
  GRANT_EXPIRED: '28P01',
  GRANT_REVOKED: '28P01',
  GRANT_WRONG_CONNECTION: '42501',
  CONNECTION_NOT_FOUND: '3D000',
  AGENT_OFFLINE: '08001',
  BROKER_UNREACHABLE: '08001',
};

export async function startPostgresEndpoint(
  options: PostgresEndpointOptions,
): Promise<PostgresEndpoint> {
  const cancels = new Map<string, CancelRoute>();
  const maxCancelKeys = options.maxCancelKeys ?? 100_000;
  const sockets = new Set<Socket>();
  const log = options.logger.child({ component: 'pg-endpoint' });
  const secureContext =
    options.tls === undefined
      ? undefined
      : createSecureContext({ cert: options.tls.cert, key: options.tls.key });

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

  const fatal = (socket: Socket, error: HoopError): void => {
    socket.end(
      errorResponse({
        severity: 'FATAL',
        code: sqlState[error.code] ?? '08006',
        message: `hoop: ${error.message} (${error.code})`,
        hint: error.hint,
      }),
    );
  };

  const serve = async (conn: { socket: Socket }): Promise<void> => {
    // A timer cleared once served: AbortSignal.timeout would fire (and allocate) for every
    // connection 30 s later, and keep that many timers alive under a storm of connections.
    const handshake = new AbortController();
    const deadline = setTimeout(() => handshake.abort(), options.handshakeTimeoutMs ?? 30_000);
    try {
      await handle(conn, handshake.signal);
    } finally {
      clearTimeout(deadline);
    }
  };

  /** The startup handshake (until `signal` aborts), the session's open, then the relay. */
  const handle = async (conn: { socket: Socket }, signal: AbortSignal): Promise<void> => {
    let socket = conn.socket;
    const sourceOf = (s: Socket) =>
      new StreamSource(
        s,
        new PacketReader({ side: 'client', maxStartupBytes: 10_000, maxMessageBytes: 64 * 1024 }),
        'client',
        signal,
      );
    let source = sourceOf(socket);
    let packet = await source.startup();
    while (packet?.kind === 'ssl-request' || packet?.kind === 'gssenc-request') {
      if (packet.kind === 'ssl-request' && secureContext !== undefined && socket === conn.socket) {
        // TLS from here on: answer 'S', then the client starts the TLS handshake.
        if (source.detach().length > 0) {
          throw new HoopError('AUTH_REQUIRED', 'the client sent data after SSLRequest before TLS');
        }
        socket.write('S');
        socket = new TLSSocket(conn.socket, { isServer: true, secureContext });
        socket.on('error', () => {});
        conn.socket = socket;
        source = sourceOf(socket);
      } else {
        socket.write('N');
      }
      packet = await source.startup();
    }
    if (
      secureContext !== undefined &&
      options.tls?.require === true &&
      socket === conn.socket &&
      !(socket instanceof TLSSocket)
    ) {
      throw new HoopError('AUTH_REQUIRED', 'this endpoint requires TLS', {
        hint: 'Connect with sslmode=require.',
      });
    }
    if (packet === undefined) return void socket.end();
    if (packet.kind === 'cancel-request') {
      source.detach();
      socket.end();
      const route = cancels.get(cancelKey(packet.processId, packet.secretKey));
      if (route !== undefined)
        await forwardCancel(route, cancelRequest(packet.processId, packet.secretKey));
      return;
    }
    const connection = packet.parameters.get('user') ?? '';
    socket.write(encodeMessage(CODE_AUTH, AUTH_CLEARTEXT));
    const password = await source.message();
    if (password.code !== CODE_PASSWORD) {
      throw new HoopError('AUTH_REQUIRED', 'expected a password message');
    }
    const token = password.body.subarray(0, Math.max(0, password.body.indexOf(0))).toString('utf8');
    const rest = source.detach();
    const { user, stream, session } = await openSession(token, {
      t: 'open',
      connection,
      client: `native ${socket.remoteAddress}:${socket.remotePort}`,
    });
    stream.on('error', () => {});
    log.info('native session', { connection, user, session });
    const forwarded = [...packet.parameters].filter(([name]) => name !== 'password');
    stream.write(startupMessage(forwarded));
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

  const server: Server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const conn = { socket };
    serve(conn).catch((err: unknown) => {
      const error = toHoopError(err);
      if (!conn.socket.destroyed) fatal(conn.socket, error);
      log.info('native session refused', { code: error.code, reason: error.message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  log.info('native Postgres endpoint listening', { host: options.host, port });
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function cancelKey(processId: number, secret: Buffer): string {
  return `${processId}:${secret.toString('hex')}`;
}
