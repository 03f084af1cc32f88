/**
 * Broker configuration: read once from the environment at the edge (`brokerConfigFromEnv`),
 * validated and defaulted here, then passed down. Nothing below reads process.env.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HoopError, resolveLimits, type TunnelLimits } from '@hoop/shared';

export interface BrokerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly masterKey: string | undefined;
  readonly adminToken: string | undefined;
  /** Native Postgres endpoint address (HOOP_PG_LISTEN), or undefined when off. */
  readonly pgListen: { host: string; port: number } | undefined;
  readonly limits: TunnelLimits;
  /** Largest JSON request body. */
  readonly maxBodyBytes: number;
  /** Largest bearer token accepted before any lookup. */
  readonly maxTokenBytes: number;
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HoopError(
      'USAGE',
      `listen address "${value}" is not host:port (e.g. 127.0.0.1:8009)`,
    );
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

export function defaultDataDir(): string {
  return join(homedir(), '.hoop', 'data');
}

export interface BrokerConfigInput {
  listen?: string;
  dataDir?: string;
  databaseUrl?: string;
  masterKey?: string;
  adminToken?: string;
  pgListen?: string;
  limits?: Partial<TunnelLimits>;
}

export function resolveBrokerConfig(input: BrokerConfigInput): BrokerConfig {
  const { host, port } = parseListen(input.listen ?? '127.0.0.1:8009');
  return {
    host,
    port,
    dataDir: input.dataDir ?? defaultDataDir(),
    databaseUrl: input.databaseUrl || undefined,
    masterKey: input.masterKey || undefined,
    adminToken: input.adminToken || undefined,
    pgListen: input.pgListen ? parseListen(input.pgListen) : undefined,
    limits: resolveLimits(input.limits),
    maxBodyBytes: 1024 * 1024,
    maxTokenBytes: 8 * 1024,
  };
}

export function brokerConfigFromEnv(env: NodeJS.ProcessEnv): BrokerConfigInput {
  const input: BrokerConfigInput = {};
  if (env['HOOP_LISTEN']) input.listen = env['HOOP_LISTEN'];
  if (env['HOOP_DATA_DIR']) input.dataDir = env['HOOP_DATA_DIR'];
  if (env['HOOP_DATABASE_URL']) input.databaseUrl = env['HOOP_DATABASE_URL'];
  if (env['HOOP_MASTER_KEY']) input.masterKey = env['HOOP_MASTER_KEY'];
  if (env['HOOP_ADMIN_TOKEN']) input.adminToken = env['HOOP_ADMIN_TOKEN'];
  if (env['HOOP_PG_LISTEN']) input.pgListen = env['HOOP_PG_LISTEN'];
  return input;
}
