/**
 * One client connection through the Postgres engine, as a named-state machine:
 *
 *   startup ─► dialing ─► authenticating ─► starting ─► relaying ─► closed
 *      └────► cancelling ─► closed          (any state ─► closed on failure)
 *
 * startup: SSL/GSSENC refused, then StartupMessage or CancelRequest from the client.
 * dialing / authenticating: the agent's own connection and login to the target (login.ts), or a
 *   warm one logged in earlier with the same parameters (warm-pool.ts, when the engine keeps any),
 *   then the broker's admission (EngineSession.admitted) once it has stored the session's row.
 * starting: AuthenticationOk to the client, then the target's ParameterStatus… ReadyForQuery,
 *   with BackendKeyData swapped for an agent key registered in the cancel table.
 * relaying: raw bytes both ways until either side closes — only when the policy neither
 *   inspects content nor records (`recording: {enabled: false}` and no guardrails/masking).
 * proxying: the policy proxy (proxy.ts): guardrails, masking and recording on every message.
 * Before dialing, the policy is checked to be enforceable (enforcement.ts): fail closed.
 */
import type { Socket } from 'node:net';
import {
  type Clock,
  HoopError,
  type Logger,
  policyInspectsContent,
  type TimerHandle,
  toHoopError,
} from '@hoop/shared';
import { whenAdmitted } from '../../admission.js';
import type { EngineSession } from '../engine.js';
import { type CancelKey, type CancelTable, forwardCancel } from './cancel.js';
import { Catalog, type CatalogCaches } from './catalog.js';
import { type DialOptions, dialTarget, type TargetConnection } from './dial.js';
import { checkEnforceable, parserFor, unenforceable } from './enforcement.js';
import { PgFailure, PostgresEngineError, protocolError, responseFor } from './errors.js';
import { Guardrails } from './guardrails.js';
import { type LoggedInTarget, logIn } from './login.js';
import { Masker } from './masking.js';
import { BackendCode, SqlState } from './messages.js';
import { PolicyProxy } from './proxy.js';
import { PacketReader } from './reader.js';
import { Recorder } from './recorder.js';
import { relay } from './relay.js';
import { StreamSource } from './source.js';
import type { SqlParse } from './sql.js';
import { type ClientHello, readClientStartup, targetStartupParameters } from './startup.js';
import { type WarmPool, type WarmSpec, warmTargetKey } from './warm-pool.js';
import {
  authenticationOk,
  backendKeyData,
  encodeMessage,
  errorResponse,
  negotiateProtocolVersion,
} from './writer.js';

/** Resolved engine limits and collaborators shared by every session. */
export interface SessionContext {
  readonly clock: Clock;
  readonly cancelTable: CancelTable;
  readonly maxStartupBytes: number;
  readonly maxHandshakeMessageBytes: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly maxScramIterations: number;
  readonly tlsOptions: DialOptions['tlsOptions'];
  readonly proxy: ProxyLimits;
  /** Warm target connections (off unless the engine was given `warmConnections`). */
  readonly warm: WarmPool;
}

/** Resolved options of the policy proxy. */
export interface ProxyLimits {
  /** Key of the `hash` masking strategy (HMAC-SHA256), stable per agent so joins still work. */
  readonly maskingKey: Buffer;
  readonly maxMessageBytes: number;
  readonly maxPendingMessages: number;
  readonly maxPreparedStatements: number;
  readonly catalogTimeoutMs: number;
  readonly catalogCacheMs: number;
  readonly maxRecordedTextChars: number;
  readonly loadSqlParser: () => Promise<SqlParse>;
  /** Catalog answers shared by the sessions of one target. */
  readonly catalogCaches: CatalogCaches;
}

export const SessionState = {
  startup: 'startup',
  cancelling: 'cancelling',
  dialing: 'dialing',
  authenticating: 'authenticating',
  starting: 'starting',
  relaying: 'relaying',
  proxying: 'proxying',
  closed: 'closed',
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

const transitions: Record<SessionState, readonly SessionState[]> = {
  startup: ['cancelling', 'dialing', 'closed'],
  cancelling: ['closed'],
  dialing: ['authenticating', 'closed'],
  authenticating: ['starting', 'closed'],
  starting: ['relaying', 'proxying', 'closed'],
  relaying: ['closed'],
  proxying: ['closed'],
  closed: [],
};

export class PostgresSession {
  private readonly ctx: SessionContext;
  private readonly session: EngineSession;
  private readonly logger: Logger;
  private readonly handshake = new AbortController();
  private handshakeTimer: TimerHandle | undefined;
  private stateValue: SessionState = SessionState.startup;
  private target: Socket | undefined;
  private cancelKey: CancelKey | undefined;

  constructor(ctx: SessionContext, session: EngineSession) {
    this.ctx = ctx;
    this.session = session;
    this.logger = session.logger.child({ engine: 'postgres', sessionId: session.sessionId });
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** Serves the session; rejects only with a HoopError after telling the client. */
  async run(): Promise<void> {
    const onAbort = (): void => this.handshake.abort(this.session.signal.reason);
    this.session.signal.addEventListener('abort', onAbort);
    if (this.session.signal.aborted) onAbort();
    this.handshakeTimer = this.ctx.clock.setTimeout(
      () => this.handshake.abort(this.timeoutError()),
      this.ctx.handshakeTimeoutMs,
    );
    try {
      await this.serve();
    } catch (err) {
      await this.fail(err);
    } finally {
      this.stopHandshakeTimer();
      this.session.signal.removeEventListener('abort', onAbort);
      if (this.cancelKey !== undefined) this.ctx.cancelTable.remove(this.cancelKey);
      this.target?.destroy();
      if (this.stateValue !== SessionState.closed) this.transition(SessionState.closed);
    }
  }

  private stopHandshakeTimer(): void {
    if (this.handshakeTimer !== undefined) this.ctx.clock.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
  }

  private transition(to: SessionState): void {
    if (!transitions[this.stateValue].includes(to)) {
      throw new HoopError(
        'INTERNAL',
        `postgres session: illegal transition ${this.stateValue} → ${to}`,
      );
    }
    this.logger.debug('postgres session state', { from: this.stateValue, to });
    this.stateValue = to;
  }

  private async serve(): Promise<void> {
    const { client } = this.session;
    const clientSource = new StreamSource(
      client,
      new PacketReader({
        side: 'client',
        maxStartupBytes: this.ctx.maxStartupBytes,
        maxMessageBytes: this.ctx.maxHandshakeMessageBytes,
      }),
      'client',
      this.handshake.signal,
    );
    // The target is dialed while the client's startup message is on its way: the TCP connect
    // (and the server's fork of a backend, and TLS) overlap the tunnel round trip before it —
    // unless a warm connection to this target is likely to serve the session instead.
    const dialing = this.mayUseWarm() ? undefined : this.dial();
    const hello = await readClientStartup(clientSource, client).catch((err: unknown) => {
      discard(dialing);
      throw err;
    });
    if (hello === undefined) {
      discard(dialing);
      this.logger.debug('client closed before starting a session');
      clientSource.detach();
      await endStream(client, this.ctx.clock, this.ctx.closeGraceMs);
      return;
    }
    if (hello.kind === 'cancel') {
      discard(dialing);
      clientSource.detach();
      await this.cancel(hello);
      return;
    }
    const { policy } = this.session;
    let parse: SqlParse | undefined;
    try {
      checkEnforceable(policy);
      if (
        (policy.reviews?.statements?.length ?? 0) > 0 &&
        this.session.reviewStatement === undefined
      ) {
        throw unenforceable(
          `reviews.statements: ${(policy.reviews?.statements ?? []).join(', ')}`,
          'this agent has no way to ask the broker for statement reviews',
        );
      }
      parse = await parserFor(policy, this.ctx.proxy.loadSqlParser);
    } catch (err) {
      discard(dialing);
      throw err;
    }
    this.transition(SessionState.dialing);
    const { target: conn, leftover } = await this.connect(hello, dialing);
    this.stopHandshakeTimer();
    const early = clientSource.detach();
    if (policyInspectsContent(policy) || policy.recording?.enabled !== false) {
      this.transition(SessionState.proxying);
      await this.proxy(conn, early, leftover, parse);
      return;
    }
    this.transition(SessionState.relaying);
    if (leftover.length > 0) client.write(leftover);
    if (early.length > 0) conn.write(early);
    await relay(client, conn, {
      signal: this.session.signal,
      clock: this.ctx.clock,
      closeGraceMs: this.ctx.closeGraceMs,
      logger: this.logger,
    });
    this.logger.debug('postgres session ended');
  }

  /** Runs the policy proxy until the session ends, with session-start/end audit events. */
  private async proxy(
    conn: Socket,
    fromClient: Buffer,
    fromTarget: Buffer,
    parse: SqlParse | undefined,
  ): Promise<void> {
    const { policy, target, audit, sessionId } = this.session;
    const limits = this.ctx.proxy;
    const masker = new Masker(policy, limits.maskingKey);
    const recorder = new Recorder({
      sessionId,
      sink: audit,
      enabled: policy.recording?.enabled !== false,
      clock: this.ctx.clock,
      masker,
      maxTextChars: limits.maxRecordedTextChars,
    });
    const catalog = masker.hasColumnMasks
      ? new Catalog({
          target,
          password: this.session.credential.password,
          clock: this.ctx.clock,
          logger: this.logger,
          signal: this.session.signal,
          connectTimeoutMs: this.ctx.connectTimeoutMs,
          tlsOptions: this.ctx.tlsOptions,
          maxScramIterations: this.ctx.maxScramIterations,
          timeoutMs: limits.catalogTimeoutMs,
          cacheMs: limits.catalogCacheMs,
          cache: limits.catalogCaches.for(target),
        })
      : undefined;
    const sessionEvent = (type: 'session-start' | 'session-end'): void => {
      if (!recorder.enabled) return;
      audit({
        type,
        session: sessionId,
        at: this.ctx.clock.now(),
        connection: target.name,
        user: target.user,
      });
    };
    sessionEvent('session-start');
    try {
      await new PolicyProxy({
        client: this.session.client,
        target: conn,
        guardrails: new Guardrails(policy, parse),
        masker,
        catalog,
        recorder,
        clock: this.ctx.clock,
        logger: this.logger,
        signal: this.session.signal,
        closeGraceMs: this.ctx.closeGraceMs,
        maxMessageBytes: limits.maxMessageBytes,
        maxPendingMessages: limits.maxPendingMessages,
        maxPreparedStatements: limits.maxPreparedStatements,
        ...(this.session.reviewStatement === undefined
          ? {}
          : { reviewStatement: this.session.reviewStatement }),
      }).run(fromClient, fromTarget);
    } finally {
      catalog?.close();
      sessionEvent('session-end');
      this.logger.debug('postgres session ended');
    }
  }

  /** True when the warm pool holds (or is opening) a connection for this target and credential. */
  private mayUseWarm(): boolean {
    const { warm } = this.ctx;
    if (!warm.enabled) return false;
    return warm.mayHave(
      warmTargetKey({ target: this.session.target, password: this.session.credential.password }),
    );
  }

  /** Starts the agent's own connection to the target (TCP, and TLS when the target wants it). */
  private dial(): Promise<TargetConnection> {
    const { target } = this.session;
    const dialing = dialTarget({
      host: target.host,
      port: target.port,
      tls: target.tls,
      connectTimeoutMs: this.ctx.connectTimeoutMs,
      tlsOptions: this.ctx.tlsOptions,
      clock: this.ctx.clock,
      signal: this.handshake.signal,
    });
    // Awaited later (or discarded): a failure before then is not an unhandled rejection.
    dialing.catch(() => {});
    return dialing;
  }

  /**
   * Takes a warm connection for this session or dials and logs in, then passes the target's
   * greeting to the client; returns the target socket and its unread bytes.
   */
  private async connect(
    hello: Extract<ClientHello, { kind: 'startup' }>,
    dialing: Promise<TargetConnection> | undefined,
  ): Promise<{ target: Socket; leftover: Buffer }> {
    const { target, client } = this.session;
    const spec: WarmSpec = {
      target,
      password: this.session.credential.password,
      parameters: targetStartupParameters(target, hello.forwarded),
    };
    const { warm } = this.ctx;
    const claimed = warm.enabled ? await warm.claim(spec, this.handshake.signal) : undefined;
    let conn: LoggedInTarget;
    if (claimed !== undefined) {
      discard(dialing);
      this.target = claimed.socket;
      this.transition(SessionState.authenticating);
      conn = claimed;
    } else {
      const dialed = await (dialing ?? this.dial());
      this.target = dialed.socket;
      this.transition(SessionState.authenticating);
      conn = await logIn(dialed, {
        parameters: spec.parameters,
        user: target.user,
        password: spec.password,
        maxStartupBytes: this.ctx.maxStartupBytes,
        maxHandshakeMessageBytes: this.ctx.maxHandshakeMessageBytes,
        maxScramIterations: this.ctx.maxScramIterations,
        logger: this.logger,
        signal: this.handshake.signal,
      });
    }
    this.logger.info('authenticated to postgres target', {
      target: `${target.host}:${target.port}`,
      method: conn.method,
      encrypted: conn.encrypted,
      warm: claimed !== undefined,
    });
    await this.admission();
    this.transition(SessionState.starting);
    if (hello.minorVersion > 0 || hello.protocolOptions.length > 0) {
      client.write(negotiateProtocolVersion(0, hello.protocolOptions));
    }
    client.write(authenticationOk());
    for (const message of conn.greeting) {
      if (message.code === BackendCode.backendKeyData) this.swapBackendKey(message.body);
      else client.write(encodeMessage(message.code, message.body));
    }
    warm.refill(spec);
    return { target: conn.socket, leftover: conn.leftover };
  }

  /** Records the target's key under a fresh agent key and gives the client the agent key. */
  private swapBackendKey(body: Buffer): void {
    if (body.length < 8) {
      throw protocolError('target', PgFailure.malformed, 'BackendKeyData shorter than 8 bytes');
    }
    if (this.cancelKey !== undefined) return;
    const { target } = this.session;
    const key = this.ctx.cancelTable.register({
      host: target.host,
      port: target.port,
      tls: target.tls,
      processId: body.readInt32BE(0),
      secretKey: Buffer.from(body.subarray(4)),
    });
    if (key === undefined) {
      this.logger.warn('cancel table is full: this session cannot cancel queries');
      return;
    }
    this.cancelKey = key;
    this.session.client.write(backendKeyData(key.processId, key.secretKey));
  }

  /**
   * Until the broker admits the session (its row stored), the client hears nothing of the target
   * and the target gets nothing of the client's beyond the startup the agent logged in with.
   */
  private async admission(): Promise<void> {
    await whenAdmitted(this.session.admitted, this.handshake.signal);
  }

  private async cancel(hello: Extract<ClientHello, { kind: 'cancel' }>): Promise<void> {
    this.transition(SessionState.cancelling);
    let admitted = true;
    try {
      // Before the client's stream ends: once it has, the broker never admits the session.
      await this.admission();
    } catch (err) {
      admitted = false;
      this.logger.info('cancel request dropped: the session was not admitted', {
        code: toHoopError(err).code,
      });
    }
    await endStream(this.session.client, this.ctx.clock, this.ctx.closeGraceMs);
    if (!admitted) return;
    const entry = this.ctx.cancelTable.lookup(hello.processId, hello.secretKey);
    if (entry === undefined) {
      this.logger.info('cancel request with an unknown key ignored');
      return;
    }
    await forwardCancel(entry, this.ctx, this.session.signal, this.logger);
  }

  private timeoutError(): PostgresEngineError {
    const ms = this.ctx.handshakeTimeoutMs;
    if (this.stateValue === SessionState.startup) {
      return protocolError('client', PgFailure.timeout, `no startup message within ${ms} ms`);
    }
    const { host, port } = this.session.target;
    return new PostgresEngineError(
      'TARGET_UNREACHABLE',
      PgFailure.timeout,
      'target',
      `target ${host}:${port} did not complete the session start within ${ms} ms`,
      {
        response: {
          severity: 'FATAL',
          code: SqlState.sqlclientUnableToEstablishSqlconnection,
          message: `hoop: could not reach target ${host}:${port}: no session within ${ms} ms`,
        },
      },
    );
  }

  /** Tells the client (when it is still there), ends it, and rethrows as a HoopError. */
  private async fail(err: unknown): Promise<void> {
    const { client, signal } = this.session;
    const clientGone =
      err instanceof PostgresEngineError &&
      err.side === 'client' &&
      err.reason === PgFailure.closed;
    this.target?.destroy();
    // What went wrong is told only once the session is on record, like anything else the client
    // hears of the target: before that the broker would take the stream's end for a session
    // that never opened and drop it. A session the broker does not admit hears why instead.
    if (!clientGone) {
      const told = await whenAdmitted(this.session.admitted, signal).then(
        () => err,
        (refusal: unknown) => refusal,
      );
      if (!client.destroyed && !client.writableEnded) {
        client.write(errorResponse(responseFor(told)));
      }
    }
    await endStream(client, this.ctx.clock, this.ctx.closeGraceMs);
    if (signal.aborted || clientGone) {
      this.logger.debug('postgres session ended before it started', { error: toHoopError(err) });
      return;
    }
    const error = toHoopError(err);
    this.logger.warn('postgres session failed', { error, code: error.code });
    throw error;
  }
}

/**
 * Ends `stream`, waits (bounded) until what was written is flushed, then destroys it: nothing
 * more is read from a client whose session is over.
 */
function endStream(stream: EngineSession['client'], clock: Clock, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stream.destroyed || stream.writableFinished) {
      stream.destroy();
      resolve();
      return;
    }
    const done = (): void => {
      clock.clearTimeout(timer);
      stream.off('finish', done);
      stream.off('close', done);
      stream.off('error', done);
      stream.destroy();
      resolve();
    };
    const timer = clock.setTimeout(done, graceMs);
    stream.once('finish', done);
    stream.once('close', done);
    stream.once('error', done);
    stream.end();
  });
}

/** Closes a target connection that is no longer wanted (once it is up, if it comes up). */
/** Closes a dial nobody will use (none when the session skipped dialing for a warm one). */
function discard(dialing: Promise<TargetConnection> | undefined): void {
  dialing?.then(
    ({ socket }) => socket.destroy(),
    () => {},
  );
}
