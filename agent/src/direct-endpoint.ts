/**
 * The agent's direct endpoint (HOOP_AGENT_PG_LISTEN): a client in the agent's own network —
 * a CI runner, an application next to the database — reaches a connection served by this agent
 * without its bytes crossing the broker:
 *
 *   psql "host=<agent> port=… user=<connection> password=<hoop token> dbname=…"
 *
 *   client ──TCP──► agent ──► target          (data: one hop)
 *                     └──wss /v1/tunnel──► broker   (control: authorize, record, revoke)
 *
 * After the startup (the shared listener: TLS, a cleartext password that is a hoop token), the
 * agent opens the session at the broker as the token's holder, on the token's tunnel (below),
 * with a `direct` ticket: the broker authorizes and records it exactly as any session (access
 * rules, reviews, its grant, the session row) and sends the agent `open-session` with the ticket.
 * The agent serves the client holding that ticket on the client's own socket (`take`); the
 * tunnel stream stays open and empty for the session's life, so revoking the grant, its expiry
 * or the token's holder being disabled still end the session. A ticket is 32 random bytes, only
 * ever sent on the token holder's tunnel and the agent's: it cannot be guessed, and nothing but
 * this agent's own client can be served under it. The clients of one token share a tunnel, as
 * the clients of one `hoop connect` do, closed once none has used it for TUNNEL_IDLE_MS: a new
 * connection then costs no WebSocket handshake. The broker refuses opens on the tunnel of an
 * identity disabled or a key deleted since, and closes it; the next client reconnects and has
 * its token checked again.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { HoopError, type Logger, TunnelClient, type TunnelLimits } from '@hoop/shared';
import {
  type PgListener,
  type PgListenerTls,
  type PgLogin,
  startPgListener,
} from './engines/postgres/pg-listener.js';
import { startupMessage } from './engines/postgres/writer.js';

/** A client that logged in to the direct endpoint and waits for its session. */
export interface DirectClient {
  readonly socket: Socket;
  /** Its startup (without the password) and what it sent after: the engine reads them first. */
  readonly startup: Buffer;
  readonly peer: string;
}

/** Clients waiting for the broker's `open-session`, by ticket. */
export class DirectTickets {
  private readonly waiting = new Map<string, DirectClient>();

  issue(client: DirectClient): string {
    const ticket = randomBytes(32).toString('base64url');
    this.waiting.set(ticket, client);
    return ticket;
  }

  /** The client waiting under `ticket`, handed over once (undefined for any other ticket). */
  take(ticket: string): DirectClient | undefined {
    const client = this.waiting.get(ticket);
    this.waiting.delete(ticket);
    return client;
  }

  drop(ticket: string): void {
    this.waiting.delete(ticket);
  }
}

export interface DirectEndpointOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: PgListenerTls;
  readonly brokerUrl: string;
  readonly tickets: DirectTickets;
  readonly logger: Logger;
  readonly limits?: Partial<TunnelLimits>;
  readonly handshakeTimeoutMs?: number;
  /** A CancelRequest for a session this agent serves (an unknown key is ignored). */
  readonly cancel: (processId: number, secretKey: Buffer) => Promise<void>;
}

/** How long a token's tunnel stays open with no session on it. */
const TUNNEL_IDLE_MS = 5_000;

/** One tunnel per token, shared by its clients' sessions, closed after it has been idle. */
class TokenTunnels {
  private readonly entries = new Map<
    string,
    { tunnel: TunnelClient; sessions: number; idle: ReturnType<typeof setTimeout> | undefined }
  >();

  constructor(private readonly open: (token: string) => TunnelClient) {}

  acquire(token: string): TunnelClient {
    let entry = this.entries.get(token);
    if (entry === undefined) {
      entry = { tunnel: this.open(token), sessions: 0, idle: undefined };
      this.entries.set(token, entry);
    }
    if (entry.idle !== undefined) clearTimeout(entry.idle);
    entry.idle = undefined;
    entry.sessions++;
    return entry.tunnel;
  }

  /** A session on `token`'s tunnel is over; `failed`: its open failed (the token may be bad). */
  release(token: string, failed: boolean): void {
    const entry = this.entries.get(token);
    if (entry === undefined) return;
    entry.sessions--;
    if (failed) {
      // Never keep a tunnel a token could not open a session on (revoked, unknown, …).
      if (entry.sessions > 0) return;
      entry.tunnel.close();
      this.entries.delete(token);
      return;
    }
    if (entry.sessions > 0) return;
    entry.idle = setTimeout(() => {
      entry.tunnel.close();
      this.entries.delete(token);
    }, TUNNEL_IDLE_MS);
    entry.idle.unref();
  }

  closeAll(): void {
    for (const entry of this.entries.values()) {
      if (entry.idle !== undefined) clearTimeout(entry.idle);
      entry.tunnel.close();
    }
    this.entries.clear();
  }
}

export async function startDirectEndpoint(options: DirectEndpointOptions): Promise<PgListener> {
  const log = options.logger.child({ component: 'direct-endpoint' });
  const tunnels = new TokenTunnels(
    (token) =>
      new TunnelClient({
        brokerUrl: options.brokerUrl,
        token,
        logger: log,
        ...(options.limits === undefined ? {} : { limits: options.limits }),
      }),
  );
  const login = async (client: PgLogin): Promise<void> => {
    const { socket, connection, token } = client;
    if (token.length === 0 || token.length > 8192) {
      throw new HoopError('AUTH_INVALID_TOKEN', 'the password is not a valid hoop token', {
        hint: 'Use a hoop token as the password (HOOP_TOKEN, an API key or a grant); the user name is the connection.',
      });
    }
    const ticket = options.tickets.issue({
      socket,
      startup: Buffer.concat([startupMessage(client.parameters), client.rest]),
      peer: client.peer,
    });
    const tunnel = tunnels.acquire(token);
    try {
      const { stream, session } = await tunnel.open({
        t: 'open',
        connection,
        client: `direct ${client.peer}`,
        direct: ticket,
      });
      // Open and empty for the session's life; it ends with the client, or when the broker ends
      // the session.
      stream.on('error', () => {});
      stream.once('close', () => tunnels.release(token, false));
      socket.once('close', () => stream.destroy());
      log.info('direct session', { connection, session, client: client.peer });
    } catch (err) {
      options.tickets.drop(ticket);
      tunnels.release(token, true);
      throw err;
    }
  };
  const listener = await startPgListener({
    host: options.host,
    port: options.port,
    logger: log,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.handshakeTimeoutMs === undefined
      ? {}
      : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    login,
    cancel: options.cancel,
  });
  return {
    port: listener.port,
    close: async () => {
      tunnels.closeAll();
      await listener.close();
    },
  };
}
