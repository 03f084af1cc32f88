/**
 * The agent: dials out to the broker (`/v1/agent`), keeps that tunnel up with heartbeats and
 * jittered reconnects, and serves each session the broker opens with the engine for its
 * connection type.
 *
 * Lifecycle: idle → connecting → connected → waiting (backoff) → connecting … → stopped.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  type Clock,
  errorBodyOf,
  HoopError,
  hoopErrorOf,
  type Logger,
  type OpenSessionMessage,
  type Policy,
  parsePolicy,
  resolveLimits,
  systemClock,
  type TimerHandle,
  TUNNEL_STREAM,
  TunnelEndpoint,
  type TunnelLimits,
  type TunnelStream,
  toHoopError,
  tunnelUrl,
  zeroMask,
} from '@hoop/shared';
import WebSocket from 'ws';
import { Admissions } from './admission.js';
import { AuditSender } from './audit-sender.js';
import { Backoff } from './backoff.js';
import { resolveCredential } from './credentials.js';
import { type DirectClient, DirectTickets, startDirectEndpoint } from './direct-endpoint.js';
import type { PgListener, PgListenerTls } from './engines/postgres/pg-listener.js';
import { defaultEngines, type EngineRegistry } from './engines/registry.js';
import { JwksCache, jwksUrl } from './grants/jwks.js';
import { VerifiedGrants } from './grants/verified-grants.js';
import type { VerifiedGrant } from './grants/verify.js';
import { StatementReviews } from './reviews.js';
import { type FsyncMode, type QuarantineInfo, Spool } from './spool/spool.js';

export const AgentState = {
  idle: 'idle',
  connecting: 'connecting',
  connected: 'connected',
  waiting: 'waiting',
  stopped: 'stopped',
} as const;
export type AgentState = (typeof AgentState)[keyof typeof AgentState];

const transitions: Record<AgentState, readonly AgentState[]> = {
  idle: ['connecting', 'stopped'],
  connecting: ['connected', 'waiting', 'stopped'],
  connected: ['waiting', 'stopped'],
  waiting: ['connecting', 'stopped'],
  stopped: [],
};

export interface AgentOptions {
  /** The broker's base URL, http(s)://host:port; the ws(s) URL is derived. */
  readonly brokerUrl: string;
  readonly token: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** The agent's environment, for `env:NAME` credential references. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly engines?: EngineRegistry;
  readonly limits?: Partial<TunnelLimits>;
  readonly backoff?: { baseMs: number; capMs: number };
  readonly name?: string;
  /**
   * Offer the broker `admit` (default): it then passes a client's startup on while it stores the
   * session's row, and the agent logs in to the target meanwhile. false: the broker holds those
   * bytes until the row is stored, as for agents from before `admit`.
   */
  readonly waitForAdmit?: boolean;
  /** How the agent checks session grants (defaults: the broker's JWKS, issuer hoop-broker). */
  readonly grants?: {
    readonly issuer?: string;
    readonly audience?: string;
    readonly fetch?: typeof fetch;
    readonly minRefetchMs?: number;
  };
  /**
   * The audit spool (HOOP_SPOOL_DIR, HOOP_SPOOL_MAX_BYTES). `dir` defaults to
   * `~/.hoop/spool/<hash of the agent token>`, so each agent has its own and keeps it across
   * restarts.
   */
  readonly spool?: {
    readonly dir?: string;
    readonly maxBytes?: number;
    readonly fsync?: FsyncMode;
    readonly fsyncMs?: number;
  };
  /** Longest a statement waits for approval before it is refused (default 65 min). */
  readonly statementReviewTimeoutMs?: number;
  /**
   * The direct endpoint (HOOP_AGENT_PG_LISTEN, see direct-endpoint.ts): Postgres clients in the
   * agent's network connect here, the broker only authorizing and recording their sessions.
   * Started by `listenDirect()`.
   */
  readonly direct?: { readonly host: string; readonly port: number; readonly tls?: PgListenerTls };
}

export interface AgentEvents {
  state: [AgentState, HoopError | undefined];
  /** A corrupt spool segment was moved aside (the others still upload). */
  quarantine: [QuarantineInfo];
}

/** The default spool directory of an agent: one per agent token, under the user's home. */
export function defaultSpoolDir(token: string, home: string = homedir()): string {
  const key = createHash('sha256').update(token).digest('hex').slice(0, 16);
  return join(home, '.hoop', 'spool', key);
}

export class Agent extends EventEmitter<AgentEvents> {
  private stateValue: AgentState = AgentState.idle;
  private readonly clock: Clock;
  private readonly limits: TunnelLimits;
  private readonly engines: EngineRegistry;
  private readonly backoff: Backoff;
  private readonly url: string;
  private endpoint: TunnelEndpoint | undefined;
  private socket: WebSocket | undefined;
  private timer: TimerHandle | undefined;
  private readonly sessions = new Map<string, AbortController>();
  private readonly grantKeys: JwksCache;
  /** Session grants checked already (the broker shares one among a user's sessions). */
  private readonly verifiedGrants = new VerifiedGrants();
  readonly audit: AuditSender;
  readonly spool: Spool;
  private readonly reviews: StatementReviews;
  /** Direct endpoint clients waiting for their session, by ticket. */
  private readonly tickets = new DirectTickets();
  private directListener: PgListener | undefined;
  lastError: HoopError | undefined;

  constructor(private readonly options: AgentOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.limits = resolveLimits(options.limits);
    this.engines = options.engines ?? defaultEngines(options.logger);
    this.backoff = new Backoff(options.backoff ?? { baseMs: 250, capMs: 15_000 });
    this.url = tunnelUrl(options.brokerUrl, '/v1/agent');
    this.reviews = new StatementReviews({
      clock: this.clock,
      send: (message) => {
        const endpoint = this.endpoint;
        if (endpoint === undefined || !endpoint.isOpen) return false;
        endpoint.sendControl(TUNNEL_STREAM, message);
        return true;
      },
      ...(options.statementReviewTimeoutMs === undefined
        ? {}
        : { timeoutMs: options.statementReviewTimeoutMs }),
    });
    const spoolLogger = options.logger.child({ component: 'spool' });
    this.spool = new Spool({
      dir: options.spool?.dir ?? defaultSpoolDir(options.token),
      ...(options.spool?.maxBytes === undefined ? {} : { maxBytes: options.spool.maxBytes }),
      ...(options.spool?.fsync === undefined ? {} : { fsync: options.spool.fsync }),
      ...(options.spool?.fsyncMs === undefined ? {} : { fsyncMs: options.spool.fsyncMs }),
      clock: this.clock,
      logger: spoolLogger,
      onQuarantine: (info) => queueMicrotask(() => this.emit('quarantine', info)),
      onDurable: () => this.audit?.notifyDurable(),
    });
    this.audit = new AuditSender({ spool: this.spool, clock: this.clock, logger: spoolLogger });
    this.grantKeys = new JwksCache({
      url: jwksUrl(options.brokerUrl),
      clock: this.clock,
      logger: options.logger,
      ...(options.grants?.fetch === undefined ? {} : { fetch: options.grants.fetch }),
      ...(options.grants?.minRefetchMs === undefined
        ? {}
        : { minRefetchMs: options.grants.minRefetchMs }),
    });
  }

  get state(): AgentState {
    return this.stateValue;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  start(): void {
    if (this.stateValue !== AgentState.idle) return;
    this.connect();
  }

  /** Resolves once connected; rejects if `timeoutMs` passes first or the agent stops. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.stateValue === AgentState.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.off('state', onState);
        reject(
          this.lastError ??
            new HoopError(
              'BROKER_UNREACHABLE',
              `could not connect to the broker within ${timeoutMs} ms`,
            ),
        );
      }, timeoutMs);
      const onState = (state: AgentState) => {
        if (state === AgentState.connected) {
          this.clock.clearTimeout(timer);
          this.off('state', onState);
          resolve();
        } else if (state === AgentState.stopped) {
          this.clock.clearTimeout(timer);
          this.off('state', onState);
          reject(new HoopError('TUNNEL_CLOSED', 'the agent stopped'));
        }
      };
      this.on('state', onState);
    });
  }

  /**
   * Starts the direct endpoint (`options.direct`); resolves with its port. Fails (USAGE) when no
   * endpoint is configured, with the system's error when the address cannot be listened on.
   */
  async listenDirect(): Promise<number> {
    const direct = this.options.direct;
    if (direct === undefined) throw new HoopError('USAGE', 'no direct endpoint is configured');
    if (this.directListener !== undefined) return this.directListener.port;
    this.directListener = await startDirectEndpoint({
      host: direct.host,
      port: direct.port,
      ...(direct.tls === undefined ? {} : { tls: direct.tls }),
      brokerUrl: this.options.brokerUrl,
      tickets: this.tickets,
      logger: this.options.logger,
      limits: this.limits,
      cancel: async (processId, secretKey) => {
        await this.engines.get('postgres').cancel?.(processId, secretKey);
      },
    });
    this.options.logger.info('direct endpoint listening', {
      host: direct.host,
      port: this.directListener.port,
    });
    return this.directListener.port;
  }

  async stop(): Promise<void> {
    if (this.stateValue === AgentState.stopped) return;
    this.transition(AgentState.stopped);
    await this.directListener?.close();
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    for (const abort of this.sessions.values()) abort.abort();
    this.audit.stop();
    this.endpoint?.close();
    this.socket?.terminate();
    await this.engines.close();
    this.spool.close();
  }

  private transition(to: AgentState, error?: HoopError): void {
    if (this.stateValue === to) return;
    if (!transitions[this.stateValue].includes(to)) {
      throw new HoopError('INTERNAL', `agent: illegal transition ${this.stateValue} → ${to}`);
    }
    this.stateValue = to;
    this.emit('state', to, error);
  }

  private connect(): void {
    this.transition(AgentState.connecting);
    const log = this.options.logger;
    const ws = new WebSocket(this.url, {
      headers: { authorization: `Bearer ${this.options.token}` },
      perMessageDeflate: false,
      maxPayload: this.limits.maxMessageBytes,
      generateMask: zeroMask,
      handshakeTimeout: 10_000,
    });
    this.socket = ws;
    let failed = false;
    const fail = (error: HoopError) => {
      if (failed) return;
      failed = true;
      this.lastError = error;
      if (this.stateValue === AgentState.stopped) return;
      const delay = this.backoff.next();
      log.warn('broker tunnel down; reconnecting', {
        code: error.code,
        reason: error.message,
        retryInMs: delay,
      });
      this.transition(AgentState.waiting, error);
      this.timer = this.clock.setTimeout(() => {
        if (this.stateValue === AgentState.waiting) this.connect();
      }, delay);
    };
    ws.on('unexpected-response', (_req, res) => {
      const code = res.statusCode === 401 ? 'AUTH_INVALID_TOKEN' : 'BROKER_UNREACHABLE';
      fail(new HoopError(code, `the broker refused the agent tunnel (HTTP ${res.statusCode})`));
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      fail(
        new HoopError(
          'BROKER_UNREACHABLE',
          `cannot reach the broker at ${this.options.brokerUrl}: ${err.message}`,
        ),
      );
    });
    ws.on('open', () => {
      (ws as unknown as { _socket?: { setNoDelay?: (v: boolean) => void } })._socket?.setNoDelay?.(
        true,
      );
      const endpoint = new TunnelEndpoint(ws, {
        role: 'agent',
        limits: this.limits,
        clock: this.clock,
        logger: log,
        ...(this.options.name === undefined ? {} : { name: this.options.name }),
        admit: this.options.waitForAdmit !== false,
      });
      this.endpoint = endpoint;
      const admissions = new Admissions();
      endpoint.on('admit', (stream) => admissions.admit(stream));
      endpoint.on('stream', (stream, message) =>
        this.serve(
          stream,
          message,
          // Listened for from the start: the admit may come while the grant is being verified.
          message.admit === true ? admissions.expect(stream) : undefined,
        ),
      );
      endpoint.on('control', (message) => {
        if (message.t === 'terminate') {
          // The broker ended the session (grant revoked or expired, identity disabled): abort it
          // with the reason, so the engine can tell the client before closing.
          this.sessions.get(message.session)?.abort(hoopErrorOf(message.error));
        } else if (message.t === 'audit-ack') {
          this.audit.ack(message.seq);
        } else if (message.t === 'review-pending') {
          this.reviews.onPending(message);
        } else if (message.t === 'review-decision') {
          this.reviews.onDecision(message);
        }
      });
      endpoint.on('close', (err) => {
        this.audit.setChannel(undefined);
        this.reviews.failAll();
        for (const abort of this.sessions.values()) abort.abort();
        fail(err ?? new HoopError('TUNNEL_CLOSED', 'the broker closed the tunnel'));
      });
      endpoint
        .ready()
        .then(() => {
          if (this.stateValue !== AgentState.connecting) return;
          this.backoff.reset();
          this.lastError = undefined;
          this.audit.setChannel({
            send: (events, seq) => {
              if (!endpoint.isOpen) return false;
              endpoint.sendControl(TUNNEL_STREAM, { t: 'audit', events, seq });
              return true;
            },
          });
          log.info('connected to broker', { url: this.options.brokerUrl });
          this.transition(AgentState.connected);
        })
        .catch(() => {});
    });
  }

  /**
   * Verifies the session's grant (fail closed: no grant, no session), then serves it.
   * `admitted`: when the broker opened it with `admit`, resolves once the broker has stored it.
   */
  private serve(
    stream: TunnelStream,
    message: OpenSessionMessage,
    admitted: Promise<void> | undefined,
  ): void {
    const endpoint = this.endpoint;
    // The broker may close the stream with an error at any time, before the engine listens too
    // (a session row it could not store): that ends the session, it must not end the agent.
    stream.on('error', () => {});
    let direct: DirectClient | undefined;
    if (message.direct !== undefined) {
      direct = this.tickets.take(message.direct);
      if (direct === undefined) {
        const error = new HoopError(
          'CONNECTION_NOT_FOUND',
          `no client of ${this.options.name === undefined ? 'this agent' : `agent ${this.options.name}`} waits for this direct session to ${message.target.name}`,
          { hint: `Connect directly only to the agent that serves ${message.target.name}.` },
        );
        this.options.logger.warn('refused session', {
          session: message.session,
          connection: message.target.name,
          code: error.code,
          reason: error.message,
        });
        endpoint?.sendControl(stream.id, { t: 'open-error', error: errorBodyOf(error) });
        stream.destroy();
        return;
      }
    }
    this.verifiedGrants
      .verify(message.grant, {
        key: (kid) => this.grantKeys.key(kid),
        now: this.clock.now(),
        connection: message.target.name,
        ...(this.options.grants?.issuer === undefined
          ? {}
          : { issuer: this.options.grants.issuer }),
        ...(this.options.grants?.audience === undefined
          ? {}
          : { audience: this.options.grants.audience }),
      })
      .then(
        (grant) => {
          if (stream.destroyed || endpoint !== this.endpoint || endpoint?.isOpen !== true) return;
          this.serveGranted(stream, message, grant, admitted, direct);
        },
        (err: unknown) => {
          const error = toHoopError(err);
          this.options.logger.warn('refused session', {
            session: message.session,
            connection: message.target.name,
            code: error.code,
            reason: error.message,
          });
          if (endpoint?.isOpen === true) {
            endpoint.sendControl(stream.id, { t: 'open-error', error: errorBodyOf(error) });
          }
          stream.destroy();
        },
      );
  }

  private serveGranted(
    stream: TunnelStream,
    message: OpenSessionMessage,
    grant: VerifiedGrant,
    admitted: Promise<void> | undefined,
    /** A direct endpoint's client: served on its own socket, the stream carrying nothing. */
    direct?: DirectClient,
  ): void {
    const endpoint = this.endpoint;
    const log = this.options.logger.child({
      session: message.session,
      connection: message.target.name,
    });
    let engine: ReturnType<EngineRegistry['get']>;
    let credential: ReturnType<typeof resolveCredential>;
    let policy: Policy;
    try {
      engine = this.engines.get(message.target.type);
      try {
        policy = parsePolicy(message.policy ?? {});
      } catch (err) {
        throw new HoopError(
          'POLICY_UNENFORCEABLE',
          `this agent cannot enforce the policy of ${message.target.name}: ${(err as Error).message}`,
        );
      }
      credential = resolveCredential(message.target.credential, this.options.env ?? {});
      if (policy.recording?.enabled !== false && this.spool.full) {
        throw new HoopError(
          'SPOOL_FULL',
          `agent audit spool is full (${this.spool.usedBytes} of ${this.spool.budget} bytes not yet uploaded); refusing a recorded session rather than running it unrecorded`,
        );
      }
    } catch (err) {
      const error = toHoopError(err);
      log.warn('refused session', { code: error.code, reason: error.message });
      endpoint?.sendControl(stream.id, { t: 'open-error', error: errorBodyOf(error) });
      stream.destroy();
      return;
    }
    const abort = new AbortController();
    this.sessions.set(message.session, abort);
    // The session ends when its grant does, whatever the broker says or fails to say.
    const expiry = this.clock.setTimeout(
      () => {
        const conn = message.target.name;
        abort.abort(
          new HoopError(
            'GRANT_EXPIRED',
            `the grant for ${conn} expired at ${new Date(grant.expiresAt).toISOString()}; request a new one: hoop grants request ${conn}`,
          ),
        );
      },
      Math.min(Math.max(0, grant.expiresAt - this.clock.now()), 2 ** 31 - 1),
    );
    expiry.unref?.();
    let client: Duplex = stream;
    if (direct !== undefined) {
      // The client's startup first, then its socket; the broker ending the stream ends it.
      direct.socket.unshift(direct.startup);
      client = direct.socket;
      stream.once('close', () =>
        abort.abort(new HoopError('TUNNEL_CLOSED', 'the broker ended the session')),
      );
    }
    endpoint?.sendControl(stream.id, { t: 'open-ok', session: message.session });
    // Out now: the engine dials the target next, and connect() on loopback holds this thread
    // while the target accepts (measured ~0.5-1 ms with PostgreSQL forking a backend).
    endpoint?.flush();
    log.info('session started', { user: message.user });
    engine
      .serve({
        sessionId: message.session,
        target: message.target,
        credential,
        client,
        logger: log,
        signal: abort.signal,
        policy,
        admitted: admitted ?? Promise.resolve(),
        reviewStatement: (statement, onPending, signal) =>
          this.reviews.request(message.session, statement, onPending, signal),
        audit: (event) => {
          try {
            this.audit.push(event);
          } catch (err) {
            // Cannot record: end the session instead of letting it run unrecorded.
            const error = toHoopError(err, 'SPOOL_FULL');
            log.error('cannot record the session; ending it', {
              code: error.code,
              reason: error.message,
            });
            abort.abort(error);
          }
        },
      })
      .then(
        () => log.info('session ended'),
        (err) => {
          const error = toHoopError(err);
          log.warn('session failed', { code: error.code, reason: error.message });
        },
      )
      .finally(() => {
        // The session's last events go to stable storage now, not at the end of the batch
        // window (on the thread pool: a blocking fsync here held every other session's relay).
        this.spool.syncSoon();
        this.clock.clearTimeout(expiry);
        this.sessions.delete(message.session);
        if (!stream.destroyed) stream.destroy();
        if (direct !== undefined && !direct.socket.destroyed) direct.socket.end();
      });
  }
}
