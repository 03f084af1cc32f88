/**
 * The agent: dials out to the broker (`/v1/agent`), keeps that tunnel up with heartbeats and
 * jittered reconnects, and serves each session the broker opens with the engine for its
 * connection type.
 *
 * Lifecycle: idle → connecting → connected → waiting (backoff) → connecting … → stopped.
 */
import { EventEmitter } from 'node:events';
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
import { AuditSender } from './audit-sender.js';
import { Backoff } from './backoff.js';
import { resolveCredential } from './credentials.js';
import { defaultEngines, type EngineRegistry } from './engines/registry.js';

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
}

export interface AgentEvents {
  state: [AgentState, HoopError | undefined];
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
  readonly audit: AuditSender;
  lastError: HoopError | undefined;

  constructor(private readonly options: AgentOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.limits = resolveLimits(options.limits);
    this.engines = options.engines ?? defaultEngines(options.logger);
    this.backoff = new Backoff(options.backoff ?? { baseMs: 250, capMs: 15_000 });
    this.url = tunnelUrl(options.brokerUrl, '/v1/agent');
    this.audit = new AuditSender({ clock: this.clock, logger: options.logger });
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

  async stop(): Promise<void> {
    if (this.stateValue === AgentState.stopped) return;
    this.transition(AgentState.stopped);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    for (const abort of this.sessions.values()) abort.abort();
    this.audit.stop();
    this.endpoint?.close();
    this.socket?.terminate();
    await this.engines.close();
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
      });
      this.endpoint = endpoint;
      endpoint.on('stream', (stream, message) => this.serve(stream, message));
      endpoint.on('control', (message) => {
        if (message.t === 'terminate') {
          // The broker ended the session (grant revoked or expired, identity disabled): abort it
          // with the reason, so the engine can tell the client before closing.
          this.sessions.get(message.session)?.abort(hoopErrorOf(message.error));
        }
      });
      endpoint.on('close', (err) => {
        this.audit.setChannel(undefined);
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
            send: (events) => {
              if (!endpoint.isOpen) return false;
              endpoint.sendControl(TUNNEL_STREAM, { t: 'audit', events });
              return true;
            },
          });
          log.info('connected to broker', { url: this.options.brokerUrl });
          this.transition(AgentState.connected);
        })
        .catch(() => {});
    });
  }

  private serve(stream: TunnelStream, message: OpenSessionMessage): void {
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
    } catch (err) {
      const error = toHoopError(err);
      log.warn('refused session', { code: error.code, reason: error.message });
      endpoint?.sendControl(stream.id, { t: 'open-error', error: errorBodyOf(error) });
      stream.destroy();
      return;
    }
    const abort = new AbortController();
    this.sessions.set(message.session, abort);
    endpoint?.sendControl(stream.id, { t: 'open-ok', session: message.session });
    stream.on('error', () => {});
    log.info('session started', { user: message.user });
    engine
      .serve({
        sessionId: message.session,
        target: message.target,
        credential,
        client: stream,
        logger: log,
        signal: abort.signal,
        policy,
        audit: (event) => this.audit.push(event),
      })
      .then(
        () => log.info('session ended'),
        (err) => {
          const error = toHoopError(err);
          log.warn('session failed', { code: error.code, reason: error.message });
        },
      )
      .finally(() => {
        this.sessions.delete(message.session);
        if (!stream.destroyed) stream.destroy();
      });
  }
}
