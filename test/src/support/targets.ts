/**
 * Postgres targets for the suite: the machine's server (127.0.0.1:5432, trust, user postgres,
 * database test — override with HOOP_E2E_PG_HOST/PORT/USER/DATABASE) and private servers with
 * password authentication from @hoop/shared/testing.
 */
import { spawnSync } from 'node:child_process';
import { type PostgresInstance, startPostgresInstance } from '@hoop/shared/testing';

export interface PgTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** Set when the target asks for a password. */
  readonly password?: string;
}

export function machinePostgres(): PgTarget {
  return {
    host: process.env['HOOP_E2E_PG_HOST'] ?? '127.0.0.1',
    port: Number(process.env['HOOP_E2E_PG_PORT'] ?? 5432),
    user: process.env['HOOP_E2E_PG_USER'] ?? 'postgres',
    database: process.env['HOOP_E2E_PG_DATABASE'] ?? 'test',
  };
}

/** Whether the `openssl` command exists (private servers need it to make a TLS certificate). */
export const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

/**
 * A private PostgreSQL that only accepts SCRAM-SHA-256 over TCP, with a random role password;
 * with `ssl`, it also accepts TLS with a self-signed certificate.
 */
export function scramPostgres(options: { ssl?: boolean } = {}): Promise<PostgresInstance> {
  return startPostgresInstance({
    auth: 'scram-sha-256',
    ssl: options.ssl ?? false,
    timeoutMs: 60_000,
  });
}

/** libpq URL straight to the target (bypassing hoop), without a password. */
export function directUrl(target: PgTarget): string {
  return `postgresql://${encodeURIComponent(target.user)}@${target.host}:${target.port}/${encodeURIComponent(target.database)}?sslmode=disable`;
}
