/**
 * The Postgres engine. For each client connection it plays the server to the client (no
 * password asked: the client never holds the target's credential), logs in to the target itself
 * with the connection's credential (trust, cleartext, MD5, SCRAM-SHA-256; TLS when the
 * connection asks), then relays bytes both ways. Cancel keys are swapped for agent-made ones and
 * kept in an engine-wide table, so a CancelRequest arriving as its own session reaches the right
 * target backend.
 *
 *   client ──startup──► engine ──dial, startup, auth──► target
 *   client ◄─AuthenticationOk, ParameterStatus…, agent BackendKeyData, ReadyForQuery── engine
 *   client ◄══════ policy proxy: guardrails, masking, recording (proxy.ts) ══════► target
 *
 * The raw relay is kept only for sessions whose policy neither inspects content nor records.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { type Clock, HoopError, type Logger, silentLogger, systemClock } from '@hoop/shared';
import type { Engine, EngineSession } from '../engine.js';
import { CancelTable, forwardCancel } from './cancel.js';
import { CatalogCaches } from './catalog.js';
import { dialTarget } from './dial.js';
import { type LoggedInTarget, logIn } from './login.js';
import { DEFAULT_MAX_SCRAM_ITERATIONS } from './scram.js';
import { PostgresSession, type SessionContext } from './session.js';
import { loadSqlParser, type SqlParse } from './sql.js';
import { WarmPool, type WarmSpec } from './warm-pool.js';

export interface PostgresEngineOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** TCP connect (and TLS negotiation) timeout to the target. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Whole handshake: client startup, dial, target auth, ReadyForQuery. Default 30 s. */
  readonly handshakeTimeoutMs?: number;
  /** Largest client startup packet (postgres itself allows 10000 bytes). Default 10 KiB. */
  readonly maxStartupBytes?: number;
  /** Largest single message read during the handshake. Default 1 MiB. */
  readonly maxHandshakeMessageBytes?: number;
  /** How long a closing side may take to flush before it is destroyed. Default 5 s. */
  readonly closeGraceMs?: number;
  /** Live cancel keys across sessions; beyond it sessions work without cancel. Default 100000. */
  readonly maxCancelKeys?: number;
  /** Largest SCRAM iteration count a target may demand. Default 1000000. */
  readonly maxScramIterations?: number;
  /**
   * TLS to targets. By default the certificate is verified for `require` and not for `prefer`;
   * `ca` adds trusted roots.
   */
  readonly targetTls?: Pick<ConnectionOptions, 'ca' | 'rejectUnauthorized'>;
  /**
   * Key of the `hash` masking strategy. Keep it stable per agent so hashed values still join
   * across sessions; a random key (stable for this engine's lifetime) when omitted.
   */
  readonly maskingKey?: Buffer | string;
  /** Largest single message after the handshake, either direction. Default 64 MiB. */
  readonly maxMessageBytes?: number;
  /** Client messages awaiting the target's answer (pipelining). Default 100000. */
  readonly maxPendingMessages?: number;
  /** Prepared statements / portals remembered per session for audit and EXECUTE. Default 10000. */
  readonly maxPreparedStatements?: number;
  /** Catalog lookup (column masks) timeout, connecting included. Default 10 s. */
  readonly catalogTimeoutMs?: number;
  /** How long a table's column names are cached per session. Default 30 s. */
  readonly catalogCacheMs?: number;
  /** Longest statement text or parameter put in an audit event. Default 16384 characters. */
  readonly maxRecordedTextChars?: number;
  /** Loads the SQL parser (tests inject a failing one). Default: libpg-query. */
  readonly loadSqlParser?: () => Promise<SqlParse>;
  /**
   * Warm target connections kept per target, credential and client parameter set, logged in and
   * unused, so a session skips the target's connection start (warm-pool.ts). Default 0 (off);
   * at most MAX_WARM_PER_KEY.
   */
  readonly warmConnections?: number;
  /** How long a warm connection waits for a session before it is closed. Default 30 s. */
  readonly warmIdleMs?: number;
  /** Warm connections across all targets. Default 64. */
  readonly maxWarmConnections?: number;
}

/** Most warm connections per target and parameter set. */
export const MAX_WARM_PER_KEY = 16;

function warmPerKey(value: number | undefined): number {
  const resolved = value ?? 0;
  if (!Number.isSafeInteger(resolved) || resolved < 0 || resolved > MAX_WARM_PER_KEY) {
    throw new HoopError(
      'USAGE',
      `postgres engine option warmConnections must be an integer from 0 to ${MAX_WARM_PER_KEY}`,
    );
  }
  return resolved;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved <= 0) {
    throw new HoopError('USAGE', `postgres engine option ${name} must be a positive integer`);
  }
  return resolved;
}

export class PostgresEngine implements Engine {
  readonly type = 'postgres' as const;
  private readonly logger: Logger;
  private readonly context: SessionContext;
  private readonly cancelTable: CancelTable;
  private readonly warm: WarmPool;

  constructor(options: PostgresEngineOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    const maxStartupBytes = positiveInteger('maxStartupBytes', options.maxStartupBytes, 10 * 1024);
    if (maxStartupBytes < 8) {
      throw new HoopError('USAGE', 'postgres engine option maxStartupBytes must be at least 8');
    }
    this.cancelTable = new CancelTable({
      maxEntries: positiveInteger('maxCancelKeys', options.maxCancelKeys, 100_000),
    });
    const clock = options.clock ?? systemClock;
    const connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs, 10_000);
    const handshakeTimeoutMs = positiveInteger(
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs,
      30_000,
    );
    const maxHandshakeMessageBytes = positiveInteger(
      'maxHandshakeMessageBytes',
      options.maxHandshakeMessageBytes,
      1024 * 1024,
    );
    const maxScramIterations = positiveInteger(
      'maxScramIterations',
      options.maxScramIterations,
      DEFAULT_MAX_SCRAM_ITERATIONS,
    );
    const warmLogger = this.logger.child({ component: 'warm-pool' });
    this.warm = new WarmPool(
      {
        perKey: warmPerKey(options.warmConnections),
        maxTotal: positiveInteger('maxWarmConnections', options.maxWarmConnections, 64),
        idleMs: positiveInteger('warmIdleMs', options.warmIdleMs, 30_000),
        clock,
        logger: warmLogger,
      },
      (spec, closing) =>
        openSpare(spec, closing, {
          clock,
          connectTimeoutMs,
          handshakeTimeoutMs,
          maxStartupBytes,
          maxHandshakeMessageBytes,
          maxScramIterations,
          tlsOptions: options.targetTls,
          logger: warmLogger,
        }),
    );
    this.context = {
      clock,
      warm: this.warm,
      cancelTable: this.cancelTable,
      maxStartupBytes,
      maxHandshakeMessageBytes,
      connectTimeoutMs,
      handshakeTimeoutMs,
      closeGraceMs: positiveInteger('closeGraceMs', options.closeGraceMs, 5_000),
      maxScramIterations,
      tlsOptions: options.targetTls,
      proxy: {
        maskingKey:
          options.maskingKey === undefined ? randomBytes(32) : Buffer.from(options.maskingKey),
        maxMessageBytes: positiveInteger(
          'maxMessageBytes',
          options.maxMessageBytes,
          64 * 1024 * 1024,
        ),
        maxPendingMessages: positiveInteger(
          'maxPendingMessages',
          options.maxPendingMessages,
          100_000,
        ),
        maxPreparedStatements: positiveInteger(
          'maxPreparedStatements',
          options.maxPreparedStatements,
          10_000,
        ),
        catalogTimeoutMs: positiveInteger('catalogTimeoutMs', options.catalogTimeoutMs, 10_000),
        catalogCacheMs: positiveInteger('catalogCacheMs', options.catalogCacheMs, 30_000),
        maxRecordedTextChars: positiveInteger(
          'maxRecordedTextChars',
          options.maxRecordedTextChars,
          16_384,
        ),
        loadSqlParser: options.loadSqlParser ?? loadSqlParser,
        catalogCaches: new CatalogCaches(),
      },
    };
  }

  /** See Engine.cancel: the agent key's target gets its real CancelRequest. */
  async cancel(processId: number, secretKey: Buffer): Promise<void> {
    const entry = this.cancelTable.lookup(processId, secretKey);
    if (entry === undefined) {
      this.logger.info('cancel request with an unknown key ignored');
      return;
    }
    await forwardCancel(entry, this.context, new AbortController().signal, this.logger);
  }

  /** Number of sessions whose queries can currently be cancelled. */
  get cancelKeys(): number {
    return this.cancelTable.size;
  }

  serve(session: EngineSession): Promise<void> {
    if (session.target.type !== 'postgres') {
      return Promise.reject(
        new HoopError(
          'UNSUPPORTED_CONNECTION_TYPE',
          `the postgres engine cannot serve a ${session.target.type} connection`,
        ),
      );
    }
    return new PostgresSession(this.context, session).run();
  }

  /** Warm target connections ready or logging in. */
  get warmConnections(): number {
    return this.warm.size;
  }

  async close(): Promise<void> {
    this.logger.debug('postgres engine closing', {
      cancelKeys: this.cancelTable.size,
      warm: this.warm.size,
    });
    this.warm.close();
    this.cancelTable.clear();
  }
}

/** What a spare's dial and login need: the sessions' own limits, and a logger. */
interface SpareOptions
  extends Pick<
    SessionContext,
    | 'clock'
    | 'connectTimeoutMs'
    | 'handshakeTimeoutMs'
    | 'maxStartupBytes'
    | 'maxHandshakeMessageBytes'
    | 'maxScramIterations'
    | 'tlsOptions'
  > {
  readonly logger: Logger;
}

/** Dials and logs in one warm connection, within the handshake timeout, until the pool closes. */
async function openSpare(
  spec: WarmSpec,
  closing: AbortSignal,
  options: SpareOptions,
): Promise<LoggedInTarget> {
  const { target } = spec;
  const controller = new AbortController();
  const onClose = (): void => controller.abort(closing.reason);
  closing.addEventListener('abort', onClose, { once: true });
  const timer = options.clock.setTimeout(
    () => controller.abort(new Error(`no login within ${options.handshakeTimeoutMs} ms`)),
    options.handshakeTimeoutMs,
  );
  try {
    const conn = await dialTarget({
      host: target.host,
      port: target.port,
      tls: target.tls,
      connectTimeoutMs: options.connectTimeoutMs,
      tlsOptions: options.tlsOptions,
      clock: options.clock,
      signal: controller.signal,
    });
    try {
      return await logIn(conn, {
        parameters: spec.parameters,
        user: target.user,
        password: spec.password,
        maxStartupBytes: options.maxStartupBytes,
        maxHandshakeMessageBytes: options.maxHandshakeMessageBytes,
        maxScramIterations: options.maxScramIterations,
        logger: options.logger,
        signal: controller.signal,
      });
    } catch (err) {
      conn.socket.destroy();
      throw err;
    }
  } finally {
    options.clock.clearTimeout(timer);
    closing.removeEventListener('abort', onClose);
  }
}
