/**
 * A Postgres listener for clients that know nothing of hoop: the connection name is the user,
 * a hoop token the password —
 *
 *   psql "host=… port=… user=<connection> password=<hoop token> dbname=…"
 *
 * It plays the server only for the startup: it answers SSLRequest ('S' with TLS configured,
 * else 'N'), asks for a cleartext password, and hands the login (connection, token, the
 * startup's other parameters, the bytes after the password) to `login`, which serves the
 * session. A CancelRequest arriving on its own connection goes to `cancel`. A login `login`
 * refuses (any error) gets a FATAL in the protocol's own form, with the error's code; the token
 * is never logged.
 *
 * Used by the broker's native endpoint (sessions relayed through the broker) and by the agent's
 * direct endpoint (sessions served by the agent itself, the broker only authorizing them).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { type ErrorCode, HoopError, type Logger, toHoopError } from '@hoop/shared';
import { PacketReader } from './reader.js';
import { StreamSource } from './source.js';
import { encodeMessage, errorResponse } from './writer.js';

export interface PgLogin {
  /** The client's socket (a TLSSocket once TLS was asked for), paused. */
  readonly socket: Socket;
  /** The startup's `user`: the connection's name. */
  readonly connection: string;
  /** The password: a hoop token. */
  readonly token: string;
  /** The startup's parameters, in order, without the password. */
  readonly parameters: readonly (readonly [string, string])[];
  /** What the client sent after its password (pipelined messages). */
  readonly rest: Buffer;
  /** The client's address, for the audit trail. */
  readonly peer: string;
}

/** PEM certificate and key: clients that ask for TLS get it; `require` refuses plaintext. */
export interface PgListenerTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly require?: boolean;
}

export interface PgListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly handshakeTimeoutMs?: number;
  readonly tls?: PgListenerTls;
  /** Serves a logged-in client; throws (a HoopError) to refuse it. */
  readonly login: (login: PgLogin, signal: AbortSignal) => Promise<void>;
  /** A CancelRequest, arrived on a connection of its own (already closed). */
  readonly cancel: (processId: number, secretKey: Buffer) => Promise<void>;
}

export interface PgListener {
  readonly port: number;
  close(): Promise<void>;
}

const AUTH_CLEARTEXT = Buffer.from([0, 0, 0, 3]);
const CODE_AUTH = 0x52; // 'R'
const CODE_PASSWORD = 0x70; // 'p'

/** The SQLSTATE a refused login gets, by hoop error code (08006 for the rest). */
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

/** Ends `socket` with a FATAL ErrorResponse for `error`. */
export function refuseLogin(socket: Socket, error: HoopError): void {
  socket.end(
    errorResponse({
      severity: 'FATAL',
      code: sqlState[error.code] ?? '08006',
      message: `hoop: ${error.message} (${error.code})`,
      hint: error.hint,
    }),
  );
}

export async function startPgListener(options: PgListenerOptions): Promise<PgListener> {
  const sockets = new Set<Socket>();
  const log = options.logger;
  const secureContext =
    options.tls === undefined
      ? undefined
      : createSecureContext({ cert: options.tls.cert, key: options.tls.key });

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

  /** The startup handshake (until `signal` aborts), then the login or the cancel. */
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
      await options.cancel(packet.processId, packet.secretKey);
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
    await options.login(
      {
        socket,
        connection,
        token,
        parameters: [...packet.parameters].filter(([name]) => name !== 'password'),
        rest,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
      },
      signal,
    );
  };

  const server: Server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const conn = { socket };
    serve(conn).catch((err: unknown) => {
      const error = toHoopError(err);
      if (!conn.socket.destroyed) refuseLogin(conn.socket, error);
      log.info('Postgres client refused', { code: error.code, reason: error.message });
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
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
