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
 * agent opens the session at the broker as the token's holder, on a tunnel of the client's own,
 * with a `direct` ticket: the broker authorizes and records it exactly as any session (access
 * rules, reviews, its grant, the session row) and sends the agent `open-session` with the ticket.
 * The agent serves the client holding that ticket on the client's own socket (`take`); the
 * tunnel stream stays open and empty for the session's life, so revoking the grant, its expiry
 * or the token's holder being disabled still end the session. A ticket is 32 random bytes, only
 * ever sent on the token holder's tunnel and the agent's: it cannot be guessed, and nothing but
 * this agent's own client can be served under it. Each client has a tunnel of its own (not one
 * per token, as `hoop connect` keeps): its token is checked at every connection, at the cost of a
 * WebSocket handshake on the connection's path (the bench's setup case: ~1.4 ms more).
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

export function startDirectEndpoint(options: DirectEndpointOptions): Promise<PgListener> {
  const log = options.logger.child({ component: 'direct-endpoint' });
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
    const tunnel = new TunnelClient({
      brokerUrl: options.brokerUrl,
      token,
      logger: log,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    try {
      const { stream, session } = await tunnel.open({
        t: 'open',
        connection,
        client: `direct ${client.peer}`,
        direct: ticket,
      });
      // Open and empty for the session's life: its end (the client gone, or the broker ending
      // the session) ends the tunnel.
      stream.on('error', () => {});
      stream.once('close', () => tunnel.close());
      socket.once('close', () => stream.destroy());
      log.info('direct session', { connection, session, client: client.peer });
    } catch (err) {
      options.tickets.drop(ticket);
      tunnel.close();
      throw err;
    }
  };
  return startPgListener({
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
}
