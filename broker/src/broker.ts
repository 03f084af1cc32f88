/**
 * The broker: REST API under /api/v1, the agent and CLI tunnel endpoints (/v1/agent,
 * /v1/tunnel), and the store. `startBroker` returns a handle that closes everything it opened.
 *
 *   CLI ──wss /v1/tunnel──► Hub ◄──wss /v1/agent── agent
 *                            │
 *                         Store (PGlite or PostgreSQL)
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  type Clock,
  HoopError,
  type Logger,
  MemorySocket,
  systemClock,
  toHoopError,
} from '@hoop/shared';
import { WebSocketServer } from 'ws';
import { accessRoutes } from './api/access.js';
import { agentRoutes } from './api/agents.js';
import { apiKeyRoutes } from './api/apikeys.js';
import { auditRoutes, handleAuditExport } from './api/audit.js';
import { authRoutes } from './api/auth.js';
import { connectionRoutes, policyRoutes } from './api/connections.js';
import type { ApiDeps } from './api/context.js';
import { grantRoutes } from './api/grants.js';
import { reviewRoutes } from './api/reviews.js';
import { serviceAccountRoutes } from './api/serviceaccounts.js';
import { sessionRoutes } from './api/sessions.js';
import { systemRoutes } from './api/system.js';
import { trustRoutes } from './api/trust.js';
import { userRoutes } from './api/users.js';
import { createAuditRecorder } from './audit/record.js';
import {
  type AuditConfig,
  auditConfigFromEnv,
  type RetentionSweeper,
  startRetentionSweeper,
} from './audit/retention.js';
import { type BrokerConfig, type BrokerConfigInput, resolveBrokerConfig } from './config.js';
import { GrantService, looksLikeJwt } from './grants/service.js';
import { bearerToken } from './http/auth.js';
import { Router, sendError } from './http/router.js';
import { IdentityService } from './identity/service.js';
import { type PostgresEndpoint, startPostgresEndpoint } from './native/postgres-endpoint.js';
import { ReviewService } from './reviews/service.js';
import { StatementReviewUses } from './reviews/statement-use.js';
import { ReviewWebhook, type WebhookConfig, webhookConfigFromEnv } from './reviews/webhook.js';
import { appendAuditEvents } from './store/audit.js';
import { loadMasterKey, openDatabase, Store } from './store/index.js';
import { startStoreMaintenance } from './store/maintenance.js';
import { Hub } from './tunnel/hub.js';
import { BROKER_VERSION } from './version.js';

export interface Broker {
  readonly url: string;
  readonly port: number;
  readonly config: BrokerConfig;
  readonly store: Store;
  readonly hub: Hub;
  /** Set when this start created the admin: where its token was written (if generated). */
  readonly adminTokenFile: string | undefined;
  /** Port of the native Postgres endpoint, when HOOP_PG_LISTEN is set. */
  readonly pgPort: number | undefined;
  close(): Promise<void>;
}

export interface StartBrokerOptions {
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Audit retention and recordings; read from HOOP_AUDIT_RETENTION / HOOP_RECORDINGS_DIR when omitted. */
  readonly audit?: AuditConfig;
  /** Review notifications; read from HOOP_REVIEW_WEBHOOK_* (`input.reviewEnv`) when omitted. */
  readonly reviewWebhook?: WebhookConfig;
  /** How long a review may stay pending (default 1 h) and how often expiry is swept. */
  readonly reviewPendingTtlSeconds?: number;
  readonly reviewSweepMs?: number;
}

export async function startBroker(
  input: BrokerConfigInput,
  options: StartBrokerOptions,
): Promise<Broker> {
  const config = resolveBrokerConfig(input);
  const webhookConfig = options.reviewWebhook ?? webhookConfigFromEnv(input.reviewEnv ?? {});
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  const masterKey = await loadMasterKey({ envValue: config.masterKey, dataDir: config.dataDir });
  const database = await openDatabase({
    dataDir: config.dataDir,
    ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
    prepare: config.databasePrepare,
    logger,
  });
  const store = new Store(database, masterKey, clock);
  let adminTokenFile: string | undefined;
  try {
    await store.failOpenSessions();
    const boot = await store.bootstrap(
      config.adminToken === undefined ? {} : { adminToken: config.adminToken },
    );
    if (boot.created && config.adminToken === undefined && boot.adminToken !== undefined) {
      adminTokenFile = join(config.dataDir, 'admin.token');
      await writeFile(adminTokenFile, `${boot.adminToken}\n`, { mode: 0o600 });
      await chmod(adminTokenFile, 0o600);
      logger.info('created the admin user; its token is in a 0600 file', { file: adminTokenFile });
    } else if (boot.created) {
      logger.info('created the admin user with the token from HOOP_ADMIN_TOKEN');
    }
  } catch (err) {
    await database.close();
    throw err;
  }

  const audit = createAuditRecorder(store.context, logger.child({ component: 'audit' }));
  const grants = new GrantService({ ctx: store.context, audit });
  try {
    await grants.init();
  } catch (err) {
    await database.close();
    throw err;
  }
  const identity = new IdentityService({
    ctx: store.context,
    audit,
    logger: logger.child({ component: 'identity' }),
    oidc: config.oidc,
  });
  identity.setGrantResolver(grants.issuer, (token) => grants.authenticate(token));
  const hub = new Hub({
    store,
    authorize: identity.authorize,
    grants,
    limits: config.limits,
    clock,
    logger: logger.child({ component: 'hub' }),
    audit: {
      append: (agentId, events, seq) => appendAuditEvents(store.context, agentId, events, seq),
    },
    writes: store.context.writes,
  });
  const auditConfig = options.audit ?? auditConfigFromEnv(input.auditEnv ?? {});
  let sweeper: RetentionSweeper | undefined;
  if (auditConfig.retentionMs !== undefined) {
    sweeper = startRetentionSweeper({
      ctx: store.context,
      retentionMs: auditConfig.retentionMs,
      intervalMs: auditConfig.sweepIntervalMs,
      clock,
      logger: logger.child({ component: 'audit' }),
    });
  }
  // PGlite has no autovacuum: vacuum and analyze its tables here (nothing on PostgreSQL).
  const maintenance = startStoreMaintenance({
    database,
    clock,
    logger: logger.child({ component: 'store' }),
  });
  const webhook =
    webhookConfig === undefined
      ? undefined
      : new ReviewWebhook(webhookConfig, logger.child({ component: 'review-webhook' }));
  const reviews = new ReviewService({
    ctx: store.context,
    audit,
    grants,
    logger: logger.child({ component: 'reviews' }),
    policyOf: (connection) => store.getConnectionPolicy(connection),
    terminateGrant: (grantId, error) => hub.terminateSessions({ grantId }, error),
    ...(options.reviewPendingTtlSeconds === undefined
      ? {}
      : { pendingTtlSeconds: options.reviewPendingTtlSeconds }),
    notify: (n) => {
      webhook?.send(n);
      if (n.event === 'review.decided' && n.review.kind === 'statement') {
        void hub.statementDecided(n.review);
      }
    },
  });
  hub.setStatementReviews(async (request) => (await reviews.requestStatement(request)).id);
  hub.setStatementReviewUses(new StatementReviewUses({ ctx: store.context, audit }));
  const reviewSweep = setInterval(() => {
    reviews.expireDue().catch((err) => logger.warn('review expiry sweep failed', { error: err }));
  }, options.reviewSweepMs ?? 30_000);
  reviewSweep.unref();
  const deps: ApiDeps = {
    store,
    hub,
    maxTokenBytes: config.maxTokenBytes,
    version: BROKER_VERSION,
    identity,
    audit,
  };
  const router = new Router(logger, config.maxBodyBytes);
  systemRoutes(router, deps);
  agentRoutes(router, deps);
  connectionRoutes(router, deps);
  policyRoutes(router, deps);
  sessionRoutes(router, deps);
  auditRoutes(router, deps);
  authRoutes(router, deps);
  userRoutes(router, deps);
  serviceAccountRoutes(router, deps);
  apiKeyRoutes(router, deps);
  accessRoutes(router, deps);
  trustRoutes(router, deps);
  grantRoutes(router, deps, grants, reviews);
  reviewRoutes(router, deps, reviews);

  const server = createServer((req, res) => {
    handleAuditExport(deps, req, res)
      .then((handled) => handled || router.handle(req, res))
      .then((handled) => {
        if (!handled)
          sendError(res, new HoopError('NOT_FOUND', `no such endpoint: ${req.method} ${req.url}`));
      })
      .catch((err) => sendError(res, toHoopError(err)));
  });
  server.keepAliveTimeout = 5_000;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.limits.maxMessageBytes,
    perMessageDeflate: false,
  });
  server.on('upgrade', (req, socket, head) => {
    upgrade(req, socket, head).catch((err) => rejectUpgrade(socket, toHoopError(err)));
  });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://broker').pathname;
    if (path !== '/v1/agent' && path !== '/v1/tunnel') {
      throw new HoopError(
        'NOT_FOUND',
        `no tunnel endpoint at ${path}; use /v1/agent or /v1/tunnel`,
      );
    }
    const token = bearerToken(req, config.maxTokenBytes);
    if (path === '/v1/agent') {
      const agent = await store.authenticateAgent(token);
      if (agent === undefined)
        throw new HoopError('AUTH_INVALID_TOKEN', 'the agent token is unknown or was revoked');
      wss.handleUpgrade(req, socket, head, (ws) => {
        setNoDelay(socket);
        hub.acceptAgent(ws, agent);
      });
      return;
    }
    if (looksLikeJwt(token)) {
      // A grant of this broker: the client may open that grant's connection only.
      const holder = await grants.authenticate(token);
      wss.handleUpgrade(req, socket, head, (ws) => {
        setNoDelay(socket);
        hub.acceptClient(ws, holder, token);
      });
      return;
    }
    const caller = await identity.resolve(token);
    wss.handleUpgrade(req, socket, head, (ws) => {
      setNoDelay(socket);
      hub.acceptClient(ws, caller);
    });
  }

  await listen(server, config.host, config.port);
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  logger.info('broker listening', {
    url,
    store: config.databaseUrl === undefined ? 'pglite' : 'postgres',
  });
  let pgEndpoint: PostgresEndpoint | undefined;
  if (config.pgListen !== undefined) {
    try {
      pgEndpoint = await startPostgresEndpoint({
        host: config.pgListen.host,
        port: config.pgListen.port,
        ...(config.pgTls === undefined
          ? {}
          : {
              tls: {
                cert: await readFile(config.pgTls.certFile),
                key: await readFile(config.pgTls.keyFile),
              },
            }),
        attach: async (token) => {
          // A bad grant says why (expired, revoked…); any other bad token is just invalid.
          const caller = looksLikeJwt(token)
            ? await grants.authenticate(token)
            : await identity.resolve(token).catch(() => undefined);
          if (caller === undefined) return undefined;
          const [socket, hubEnd] = MemorySocket.pair();
          hub.acceptClient(hubEnd, caller, token);
          return { name: caller.name, socket };
        },
        limits: config.limits,
        clock,
        logger,
      });
    } catch (err) {
      maintenance.stop();
      hub.close();
      server.close();
      await database.close();
      throw new HoopError(
        'USAGE',
        `cannot listen for Postgres clients on ${config.pgListen.host}:${config.pgListen.port}: ${(err as Error).message}`,
        { hint: 'Set HOOP_PG_LISTEN to a free address.' },
      );
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    config,
    store,
    hub,
    adminTokenFile,
    pgPort: pgEndpoint?.port,
    close: () => {
      closing ??= (async () => {
        sweeper?.stop();
        maintenance.stop();
        clearInterval(reviewSweep);
        webhook?.close();
        await pgEndpoint?.close();
        hub.close();
        wss.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        // Audit appends under way, then session ends, grant rows and audit events still
        // grouping: written before the store closes.
        await hub.settle();
        await store.context.writes?.settle();
        await database.close();
      })();
      return closing;
    },
  };
}

function setNoDelay(socket: Duplex): void {
  (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
}

function rejectUpgrade(socket: Duplex, error: HoopError): void {
  const body = JSON.stringify({ error: error.toJSON() });
  const reason =
    error.httpStatus === 401
      ? 'Unauthorized'
      : error.httpStatus === 403
        ? 'Forbidden'
        : error.httpStatus === 404
          ? 'Not Found'
          : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${error.httpStatus} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new HoopError('USAGE', `${host}:${port} is already in use`, {
              hint: 'Set HOOP_LISTEN to a free address, or stop the other process.',
            })
          : err,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
