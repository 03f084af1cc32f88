/**
 * The real `psql` binary. It runs with a temp HOME (no ~/.pgpass, no ~/.psqlrc), no PG* variables
 * (so no PGPASSWORD), `-w` (never prompt: a server asking for a password fails the connection)
 * and a bounded PGCONNECT_TIMEOUT, so a psql session that succeeds never had a password.
 */
import { type Env, isolatedEnv } from './env.js';
import { ChildHandle, runToExit } from './process.js';

export const PSQL = 'psql';

export function psqlEnv(extra: Env = {}): Env {
  return isolatedEnv({ PGCONNECT_TIMEOUT: '10', ...extra }).env;
}

function psqlArgs(url: string, sql: string): string[] {
  return [url, '-X', '-w', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql];
}

export interface PsqlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `psql URL -c SQL` to completion (bounded). */
export async function runPsql(
  url: string,
  sql: string,
  options: { timeoutMs?: number; env?: Env } = {},
): Promise<PsqlResult> {
  const { code, stdout, stderr } = await runToExit({
    name: 'psql',
    command: PSQL,
    args: psqlArgs(url, sql),
    env: options.env ?? psqlEnv(),
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { code, stdout, stderr };
}

/** `psql URL -c SQL`, expecting success; returns stdout without the trailing newline. */
export async function psqlValue(url: string, sql: string): Promise<string> {
  const result = await runPsql(url, sql);
  if (result.code !== 0) {
    throw new Error(`psql -c ${JSON.stringify(sql)} exited ${result.code}\n${result.stderr}`);
  }
  return result.stdout.replace(/\n$/, '');
}

/** A running psql (for cancel and streaming tests). */
export function spawnPsql(
  url: string,
  sql: string,
  options: { env?: Env; onStdout?: (chunk: Buffer) => void } = {},
): ChildHandle {
  return new ChildHandle({
    name: 'psql',
    command: PSQL,
    args: psqlArgs(url, sql),
    env: options.env ?? psqlEnv(),
    ...(options.onStdout === undefined ? {} : { onStdout: options.onStdout }),
  });
}
