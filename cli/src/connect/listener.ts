/**
 * `hoop connect`'s local listener: each accepted TCP connection becomes one tunnel stream to the
 * connection's agent. When the stream cannot open (agent offline, broker down, …) the local
 * client is told in its own protocol (for Postgres, an ErrorResponse psql prints), and the
 * listener keeps serving.
 *
 * Lifecycle: idle → listening → closed.
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import {
  type ConnectionType,
  HoopError,
  type Logger,
  type TunnelClient,
  toHoopError,
} from '@hoop/shared';
import { answerPostgresEncryption } from './pg-preamble.js';

/** How long a refused client may take to send its startup before it is disconnected. */
const REFUSAL_TIMEOUT_MS = 5_000;

export const ListenerState = { idle: 'idle', listening: 'listening', closed: 'closed' } as const;
export type ListenerState = (typeof ListenerState)[keyof typeof ListenerState];

export interface ListenerOptions {
  readonly connection: string;
  readonly type: ConnectionType;
  readonly host: string;
  readonly port: number;
  readonly tunnel: TunnelClient;
  readonly logger: Logger;
  /** Called for every failed open, for the person watching the terminal. */
  readonly onRefused?: (error: HoopError) => void;
}

export class ConnectListener {
  private stateValue: ListenerState = ListenerState.idle;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  opened = 0;

  constructor(private readonly options: ListenerOptions) {}

  get state(): ListenerState {
    return this.stateValue;
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<AddressInfo> {
    if (this.stateValue !== ListenerState.idle)
      throw new HoopError('INTERNAL', `listener is ${this.stateValue}`);
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) =>
      this.accept(socket),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new HoopError(
                'USAGE',
                `port ${this.options.port} on ${this.options.host} is already in use`,
                {
                  hint: 'Pick another local port with --port N (or --port 0 for any free one).',
                },
              )
            : toHoopError(err),
        );
      });
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.stateValue = ListenerState.listening;
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (this.stateValue === ListenerState.closed) return;
    this.stateValue = ListenerState.closed;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    // Replies are written as they arrive from the tunnel; Nagle would hold a small one back
    // while an earlier one is unacknowledged.
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    // The open and the client's encryption negotiation run side by side: by the time the agent
    // has opened the session, the client has usually sent its StartupMessage already.
    const preamble =
      this.options.type === 'postgres'
        ? answerPostgresEncryption(socket)
        : Promise.resolve(Buffer.alloc(0));
    // The StartupMessage rides along as early data when it comes before the broker's answer:
    // the broker passes it on with its open-session, and the agent logs in to the target while
    // the session is recorded, so the target's reply does not wait for open-ok to cross back to
    // here first.
    const opening = this.options.tunnel.open(
      { t: 'open', connection: this.options.connection, client },
      preamble,
    );
    opening
      .then(({ stream, session, earlySent }) => {
        this.opened++;
        this.options.logger.debug('stream open', { session, client });
        stream.on('error', () => {});
        if (socket.destroyed) {
          stream.destroy();
          return;
        }
        // The session may end (agent-side startup timeout, …) before the client says anything.
        const ended = (): void => {
          socket.destroy();
        };
        stream.once('close', ended);
        void preamble.then((held) => {
          stream.off('close', ended);
          if (socket.destroyed || stream.destroyed) {
            stream.destroy();
            socket.destroy();
            return;
          }
          if (held.length > 0 && !earlySent) stream.write(held);
          pipeline(socket, stream, socket, () => {
            if (!stream.destroyed) stream.destroy();
          });
          socket.resume();
        });
      })
      .catch((err: unknown) => {
        const error = toHoopError(err);
        this.options.onRefused?.(error);
        // The socket stays paused until the refusal reads the client's startup (after the
        // encryption negotiation, which the preamble already answered).
        // A client that never gets to its startup is let go after the refusal's own timeout.
        let timer: NodeJS.Timeout | undefined;
        const silent = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), REFUSAL_TIMEOUT_MS);
        });
        void Promise.race([preamble, silent])
          .then(async (held) => {
            clearTimeout(timer);
            if (held === undefined || socket.destroyed) return;
            if (held.length > 0) socket.unshift(held);
            const { refuseClient } = await import('@hoop/agent/postgres-wire');
            await refuseClient(this.options.type, socket, error);
          })
          .finally(() => socket.destroy());
      });
  }
}
