/**
 * Broker configuration: read once from the environment at the edge (`brokerConfigFromEnv`),
 * validated and defaulted here, then passed down. Nothing below reads process.env.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HoopError, parseListen, resolveLimits, type TunnelLimits } from '@hoop/shared';

export { parseListen };

export interface BrokerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  /** Named prepared statements on a PostgreSQL store (HOOP_DATABASE_PREPARE, default on). */
  readonly databasePrepare: boolean;
  readonly masterKey: string | undefined;
  readonly adminToken: string | undefined;
  /** Native Postgres endpoint address (HOOP_PG_LISTEN), or undefined when off. */
  readonly pgListen: { host: string; port: number } | undefined;
  /** PEM files for TLS on the native endpoint (HOOP_PG_TLS_CERT, HOOP_PG_TLS_KEY). */
  readonly pgTls: { certFile: string; keyFile: string } | undefined;
  readonly limits: TunnelLimits;
  /** Largest JSON request body. */
  readonly maxBodyBytes: number;
  /** Largest bearer token accepted before any lookup. */
  readonly maxTokenBytes: number;
  /** People via an OpenID provider (HOOP_OIDC_*); undefined when HOOP_OIDC_ISSUER is unset. */
  readonly oidc:
    | { issuer: string; clientId: string; clientSecret: string; groupsClaim: string }
    | undefined;
}

export function defaultDataDir(): string {
  return join(homedir(), '.hoop', 'data');
}

export interface BrokerConfigInput {
  listen?: string;
  dataDir?: string;
  databaseUrl?: string;
  /** HOOP_DATABASE_PREPARE as the user typed it: `on` (default) or `off`. */
  databasePrepare?: string;
  masterKey?: string;
  adminToken?: string;
  pgListen?: string;
  pgTlsCert?: string;
  pgTlsKey?: string;
  /** HOOP_AUDIT_RETENTION (e.g. `90d`) and HOOP_RECORDINGS_DIR, as the user typed them. */
  auditEnv?: { HOOP_AUDIT_RETENTION?: string; HOOP_RECORDINGS_DIR?: string };
  /** HOOP_REVIEW_WEBHOOK_URL / _SECRET / _FORMAT, as the user set them. */
  reviewEnv?: {
    HOOP_REVIEW_WEBHOOK_URL?: string;
    HOOP_REVIEW_WEBHOOK_SECRET?: string;
    HOOP_REVIEW_WEBHOOK_FORMAT?: string;
  };
  limits?: Partial<TunnelLimits>;
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecret?: string;
  /** Claim with the user's groups; default `groups`. */
  oidcGroupsClaim?: string;
}

function resolveOidc(input: BrokerConfigInput): BrokerConfig['oidc'] {
  if (!input.oidcIssuer) return undefined;
  if (!input.oidcClientId || !input.oidcClientSecret) {
    throw new HoopError(
      'USAGE',
      'HOOP_OIDC_ISSUER needs HOOP_OIDC_CLIENT_ID and HOOP_OIDC_CLIENT_SECRET as well',
    );
  }
  let url: URL;
  try {
    url = new URL(input.oidcIssuer);
  } catch {
    throw new HoopError('USAGE', 'HOOP_OIDC_ISSUER must be the issuer URL (https://…)');
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new HoopError('USAGE', 'HOOP_OIDC_ISSUER must be an https URL (http only on loopback)');
  }
  return {
    issuer: input.oidcIssuer,
    clientId: input.oidcClientId,
    clientSecret: input.oidcClientSecret,
    groupsClaim: input.oidcGroupsClaim || 'groups',
  };
}

export function resolveBrokerConfig(input: BrokerConfigInput): BrokerConfig {
  const { host, port } = parseListen(input.listen ?? '127.0.0.1:8009');
  return {
    host,
    port,
    dataDir: input.dataDir ?? defaultDataDir(),
    databaseUrl: input.databaseUrl || undefined,
    databasePrepare: parseOnOff('HOOP_DATABASE_PREPARE', input.databasePrepare, true),
    masterKey: input.masterKey || undefined,
    adminToken: input.adminToken || undefined,
    pgListen: input.pgListen ? parseListen(input.pgListen) : undefined,
    pgTls: pgTlsOf(input),
    limits: resolveLimits(input.limits),
    maxBodyBytes: 1024 * 1024,
    maxTokenBytes: 8 * 1024,
    oidc: resolveOidc(input),
  };
}

export function brokerConfigFromEnv(env: NodeJS.ProcessEnv): BrokerConfigInput {
  const input: BrokerConfigInput = {};
  if (env['HOOP_LISTEN']) input.listen = env['HOOP_LISTEN'];
  if (env['HOOP_DATA_DIR']) input.dataDir = env['HOOP_DATA_DIR'];
  if (env['HOOP_DATABASE_URL']) input.databaseUrl = env['HOOP_DATABASE_URL'];
  if (env['HOOP_DATABASE_PREPARE']) input.databasePrepare = env['HOOP_DATABASE_PREPARE'];
  if (env['HOOP_MASTER_KEY']) input.masterKey = env['HOOP_MASTER_KEY'];
  if (env['HOOP_ADMIN_TOKEN']) input.adminToken = env['HOOP_ADMIN_TOKEN'];
  if (env['HOOP_PG_LISTEN']) input.pgListen = env['HOOP_PG_LISTEN'];
  if (env['HOOP_PG_TLS_CERT']) input.pgTlsCert = env['HOOP_PG_TLS_CERT'];
  if (env['HOOP_PG_TLS_KEY']) input.pgTlsKey = env['HOOP_PG_TLS_KEY'];
  input.auditEnv = {
    ...(env['HOOP_AUDIT_RETENTION'] ? { HOOP_AUDIT_RETENTION: env['HOOP_AUDIT_RETENTION'] } : {}),
    ...(env['HOOP_RECORDINGS_DIR'] ? { HOOP_RECORDINGS_DIR: env['HOOP_RECORDINGS_DIR'] } : {}),
  };
  input.reviewEnv = {};
  for (const key of [
    'HOOP_REVIEW_WEBHOOK_URL',
    'HOOP_REVIEW_WEBHOOK_SECRET',
    'HOOP_REVIEW_WEBHOOK_FORMAT',
  ] as const) {
    const value = env[key];
    if (value) input.reviewEnv[key] = value;
  }
  if (env['HOOP_OIDC_ISSUER']) input.oidcIssuer = env['HOOP_OIDC_ISSUER'];
  if (env['HOOP_OIDC_CLIENT_ID']) input.oidcClientId = env['HOOP_OIDC_CLIENT_ID'];
  if (env['HOOP_OIDC_CLIENT_SECRET']) input.oidcClientSecret = env['HOOP_OIDC_CLIENT_SECRET'];
  if (env['HOOP_OIDC_GROUPS_CLAIM']) input.oidcGroupsClaim = env['HOOP_OIDC_GROUPS_CLAIM'];
  return input;
}

function parseOnOff(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  const lower = value.trim().toLowerCase();
  if (lower === 'on') return true;
  if (lower === 'off') return false;
  throw new HoopError('USAGE', `${name} must be on or off, not "${value}"`);
}

function pgTlsOf(input: BrokerConfigInput): { certFile: string; keyFile: string } | undefined {
  if (!input.pgTlsCert && !input.pgTlsKey) return undefined;
  if (!input.pgTlsCert || !input.pgTlsKey) {
    throw new HoopError('USAGE', 'HOOP_PG_TLS_CERT and HOOP_PG_TLS_KEY go together', {
      hint: 'Set both to PEM files (certificate and private key) to offer TLS to Postgres clients.',
    });
  }
  return { certFile: input.pgTlsCert, keyFile: input.pgTlsKey };
}
