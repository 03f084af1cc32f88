/** The target PostgreSQL: is it there, and a fresh pgbench database on it (via psql/pgbench). */

import { BenchError, BenchErrorCode } from './errors.js';
import { clientEnv } from './pgbench.js';
import { type Env, run } from './processes.js';

export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
}

export type Probe = { ok: true; version: string } | { ok: false; reason: string };

const PROBE_TIMEOUT_MS = 15_000;
const DDL_TIMEOUT_MS = 60_000;
const INIT_TIMEOUT_MS = 10 * 60_000;

/** Checks that psql and pgbench exist and the server answers; never throws for "not there". */
export async function probe(server: PgServer, env: Env, signal: AbortSignal): Promise<Probe> {
  try {
    await run('pgbench', ['--version'], { env, timeoutMs: PROBE_TIMEOUT_MS, signal });
    const result = await psql(server, 'postgres', ['-c', 'SHOW server_version'], env, {
      timeoutMs: PROBE_TIMEOUT_MS,
      signal,
    });
    if (result.code !== 0) {
      return {
        ok: false,
        reason: `PostgreSQL at ${server.host}:${server.port} (user ${server.user}) is not reachable: ${result.stderr.trim()}`,
      };
    }
    return { ok: true, version: result.stdout.trim() };
  } catch (err) {
    if (err instanceof BenchError && err.code === BenchErrorCode.notFound)
      return { ok: false, reason: err.message };
    throw err;
  }
}

/** Drops and re-creates `database`, then fills it with `pgbench -i -s scale`. */
export async function createBenchDatabase(
  server: PgServer,
  database: string,
  scale: number,
  env: Env,
  signal: AbortSignal,
): Promise<void> {
  await createEmptyDatabase(server, database, env, signal);
  await checked(
    'pgbench -i',
    run(
      'pgbench',
      [
        '-i',
        '-q',
        '-s',
        String(scale),
        ...['-h', server.host, '-p', String(server.port), '-U', server.user],
        database,
      ],
      { env, timeoutMs: INIT_TIMEOUT_MS, signal },
    ),
  );
}

/** Drops and re-creates `database`, empty. */
export async function createEmptyDatabase(
  server: PgServer,
  database: string,
  env: Env,
  signal: AbortSignal,
): Promise<void> {
  await checked(
    'psql (create database)',
    psql(
      server,
      'postgres',
      ['-c', `DROP DATABASE IF EXISTS ${database}`, '-c', `CREATE DATABASE ${database}`],
      env,
      { timeoutMs: DDL_TIMEOUT_MS, signal },
    ),
  );
}

export async function dropDatabase(server: PgServer, database: string, env: Env): Promise<void> {
  await checked(
    'psql (drop database)',
    psql(server, 'postgres', ['-c', `DROP DATABASE IF EXISTS ${database}`], env, {
      timeoutMs: DDL_TIMEOUT_MS,
    }),
  );
}

/**
 * True when `select 1` works through `server` (any path: direct, pgbouncer, ssh -L, hoop,
 * hoop-native), with its password as PGPASSWORD when it has one.
 */
export async function answers(
  server: PgServer & { readonly password?: string },
  database: string,
  env: Env,
  signal: AbortSignal,
): Promise<boolean> {
  const result = await psql(server, database, ['-c', 'select 1'], clientEnv(env, server), {
    timeoutMs: PROBE_TIMEOUT_MS,
    signal,
  });
  return result.code === 0 && result.stdout.trim() === '1';
}

export function psql(
  server: PgServer,
  database: string,
  args: readonly string[],
  env: Env,
  options: { timeoutMs: number; signal?: AbortSignal },
) {
  return run(
    'psql',
    [
      ...['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'],
      ...['-h', server.host, '-p', String(server.port), '-U', server.user, '-d', database],
      ...args,
    ],
    { env: { ...env, PGCONNECT_TIMEOUT: '5' }, ...options },
  );
}

async function checked(
  what: string,
  pending: Promise<{ code: number | null; stderr: string }>,
): Promise<void> {
  const result = await pending;
  if (result.code !== 0) {
    throw new BenchError(
      BenchErrorCode.commandFailed,
      `${what} failed (exit code ${result.code}): ${result.stderr.trim()}`,
    );
  }
}
