/**
 * Bulk read: `COPY (select * from bench_copy) TO STDOUT` of about N MB through each path,
 * alternating, timed around psql (`psql -c "copy …" | wc -c`, so nothing is kept in memory and
 * the byte count is checked). The rows (~100 bytes: an integer, an md5 and 60 bytes of padding)
 * are materialized once beforehand and read once untimed, so the server only streams cached
 * rows and the runs measure the path, not md5() on the server.
 */

import { performance } from 'node:perf_hooks';
import { BenchError, BenchErrorCode } from './errors.js';
import { clientEnv, type Endpoint } from './pgbench.js';
import { type Env, run } from './processes.js';
import { type CopyCell, median, type PathName, ratio } from './report.js';

/** Bytes of one row: up to 8 digits, tab, 32 hex, tab, 60 pad, newline. */
const ROW_BYTES = 102;

const TABLE = 'bench_copy';
/**
 * Runs per path at least: one COPY takes under a second, and on a shared 2-core machine the
 * same path's runs differ by up to 1.7× from one second to the next (direct alone measured
 * 135-253 MB/s in a row), so a median of two said more about the moment than the path.
 */
export const COPY_MIN_ROUNDS = 5;

export const COPY_SQL = `copy (select * from ${TABLE}) to stdout`;

export function createCopyTableSql(megabytes: number): string {
  const rows = Math.max(1, Math.round((megabytes * 1e6) / ROW_BYTES));
  return `drop table if exists ${TABLE}; create table ${TABLE} as select i, md5(i::text) as h, repeat('x', 60) as pad from generate_series(1, ${rows}) as i`;
}

export interface CopyOptions {
  readonly endpoints: ReadonlyMap<PathName, Endpoint>;
  readonly megabytes: number;
  readonly rounds: number;
  readonly env: Env;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

export async function runCopyCase(o: CopyOptions): Promise<CopyCell[]> {
  const directEndpoint = o.endpoints.get('direct');
  if (directEndpoint !== undefined) {
    o.log(`bench: COPY: creating table ${TABLE} (~${o.megabytes} MB) and reading it once…`);
    await copyThrough('direct', directEndpoint, createCopyTableSql(o.megabytes), o);
    await copyThrough('direct', directEndpoint, COPY_SQL, o);
  }
  const runs = new Map<PathName, { seconds: number[]; bytes: number }>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const [path, e] of o.endpoints) {
      const started = performance.now();
      const bytes = await copyThrough(path, e, COPY_SQL, o);
      const seconds = (performance.now() - started) / 1000;
      const entry = runs.get(path) ?? { seconds: [], bytes };
      runs.set(path, entry);
      entry.seconds.push(seconds);
      o.log(
        `bench: round ${round}/${o.rounds} COPY out ${path.padEnd(11)} ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s = ${(bytes / 1e6 / seconds).toFixed(1)} MB/s`,
      );
    }
  }
  const cells = [...runs].map(([path, r]) => ({
    path,
    r,
    mbPerS: r.bytes / 1e6 / median(r.seconds),
  }));
  const direct = cells.find((c) => c.path === 'direct')?.mbPerS ?? Number.NaN;
  return cells.map(({ path, r, mbPerS }) => ({
    path,
    seconds: r.seconds,
    bytes: r.bytes,
    mbPerS,
    ratio: ratio(mbPerS, direct),
  }));
}

/** Runs `sql` with psql through one path, output counted by `wc -c`; returns the byte count. */
async function copyThrough(
  path: PathName,
  e: Endpoint,
  sql: string,
  o: CopyOptions,
): Promise<number> {
  const result = await run(
    'bash',
    [
      '-c',
      'set -o pipefail; psql -X -q -v ON_ERROR_STOP=1 "$@" | wc -c',
      'copy',
      ...['-h', e.host, '-p', String(e.port), '-U', e.user, '-d', e.database, '-c', sql],
    ],
    { env: clientEnv(o.env, e), timeoutMs: 10 * 60_000, signal: o.signal },
  );
  const bytes = Number(result.stdout.trim());
  if (result.code !== 0 || !Number.isFinite(bytes)) {
    throw new BenchError(
      BenchErrorCode.commandFailed,
      `COPY through ${path} failed (exit code ${result.code}): ${result.stderr.trim()}`,
    );
  }
  return bytes;
}
