/**
 * Runs pgbench against one endpoint and reads its summary.
 * Output format: https://www.postgresql.org/docs/current/pgbench.html ("Typical output").
 */

import { BenchError, BenchErrorCode } from './errors.js';
import { type Env, run } from './processes.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** Sent as PGPASSWORD, never on argv (hoop-native: a hoop token); the trust paths have none. */
  readonly password?: string;
}

/** `database` as `user` on a port of 127.0.0.1 (a path's local end), without a password. */
export function loopback(port: number, user: string, database: string): Endpoint {
  return { host: '127.0.0.1', port, user, database };
}

/** The client environment for `endpoint`: `env`, plus PGPASSWORD when it has a password. */
export function clientEnv(env: Env, endpoint: { readonly password?: string }): Env {
  return endpoint.password === undefined ? env : { ...env, PGPASSWORD: endpoint.password };
}

export interface PgbenchSummary {
  /** Transactions per second, without the initial connection time. */
  readonly tps: number;
  /** "latency average", when printed. */
  readonly latencyMs: number | undefined;
  /** "number of transactions actually processed", when printed. */
  readonly transactions: number | undefined;
  /** "average connection time" (printed with `-C`), in ms. */
  readonly connectionMs: number | undefined;
}

export const QUERY_MODES = ['simple', 'prepared'] as const;
export type QueryMode = (typeof QUERY_MODES)[number];

export interface PgbenchRun {
  readonly endpoint: Endpoint;
  readonly clients: number;
  readonly threads: number;
  readonly durationS: number;
  /** pgbench -M (default simple). */
  readonly mode?: QueryMode;
  /** pgbench -C: a new connection per transaction. */
  readonly connectEach?: boolean;
  /** pgbench -l --log-prefix: where the per-transaction logs go. */
  readonly logPrefix?: string;
  readonly env: Env;
  readonly signal?: AbortSignal;
}

/**
 * pgbench ≥ 14 prints `tps = N (without initial connection time)`, or with `-C`
 * `tps = N (including reconnection times)`; older versions print
 * `tps = N (excluding connections establishing)` next to an "including" line, which we skip.
 */
const TPS =
  /^tps = (\d+(?:\.\d+)?) \((?:without initial connection time|including reconnection times|excluding connections establishing)\)\s*$/m;
const LATENCY = /^latency average = (\d+(?:\.\d+)?) ms\s*$/m;
const CONNECTION = /^average connection time = (\d+(?:\.\d+)?) ms\s*$/m;
const TRANSACTIONS = /^number of transactions actually processed: (\d+)(?:\/\d+)?\s*$/m;

/** Reads pgbench's summary; undefined when there is no TPS line. */
export function parsePgbenchOutput(output: string): PgbenchSummary | undefined {
  const tps = TPS.exec(output)?.[1];
  if (tps === undefined) return undefined;
  const latency = LATENCY.exec(output)?.[1];
  const transactions = TRANSACTIONS.exec(output)?.[1];
  const connection = CONNECTION.exec(output)?.[1];
  return {
    tps: Number(tps),
    latencyMs: latency === undefined ? undefined : Number(latency),
    transactions: transactions === undefined ? undefined : Number(transactions),
    connectionMs: connection === undefined ? undefined : Number(connection),
  };
}

/** Select-only pgbench (`-S`, no vacuum: the data is read-only and vacuumed at init). */
export function pgbenchArgs(run: Omit<PgbenchRun, 'env' | 'signal'>): string[] {
  const { endpoint } = run;
  return [
    '-n',
    '-S',
    '-M',
    run.mode ?? 'simple',
    ...(run.connectEach === true ? ['-C'] : []),
    ...(run.logPrefix === undefined ? [] : ['-l', `--log-prefix=${run.logPrefix}`]),
    '-c',
    String(run.clients),
    '-j',
    String(run.threads),
    '-T',
    String(run.durationS),
    '-h',
    endpoint.host,
    '-p',
    String(endpoint.port),
    '-U',
    endpoint.user,
    endpoint.database,
  ];
}

export async function runPgbench(options: PgbenchRun): Promise<PgbenchSummary> {
  const result = await run('pgbench', pgbenchArgs(options), {
    env: clientEnv(options.env, options.endpoint),
    // Connecting and reporting take a moment beyond -T; a hung run must still end.
    timeoutMs: (options.durationS + 60) * 1000,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const where = `${options.endpoint.host}:${options.endpoint.port}`;
  if (result.code !== 0) {
    throw new BenchError(
      BenchErrorCode.commandFailed,
      `pgbench against ${where} failed (${result.signal ?? `exit code ${result.code}`}): ${result.stderr.trim()}`,
    );
  }
  const summary = parsePgbenchOutput(result.stdout);
  if (summary === undefined) {
    throw new BenchError(
      BenchErrorCode.pgbenchOutput,
      `pgbench against ${where} printed no "tps = …" line: ${result.stdout.trim()}`,
    );
  }
  return summary;
}
