/** Flags and environment of `npm run bench`, validated and defaulted in one place. */

import { parseArgs } from 'node:util';
import { BenchError, BenchErrorCode } from './errors.js';

export interface BenchOptions {
  /** Seconds per pgbench run (pgbench -T). */
  readonly durationS: number;
  /** Runs per path; paths alternate: direct, hoop, direct, hoop, … */
  readonly rounds: number;
  /** pgbench -c */
  readonly clients: number;
  /** pgbench -j */
  readonly threads: number;
  /** pgbench -i -s */
  readonly scale: number;
  /** Forward the services' stderr (warnings) to ours. */
  readonly verbose: boolean;
  readonly help: boolean;
}

export const DEFAULTS = {
  durationS: 20,
  rounds: 3,
  clients: 8,
  threads: 2,
  scale: 10,
} as const;

/** Alternation needs at least two runs of each path to say anything about noise. */
export const MIN_ROUNDS = 2;

export const USAGE = `usage: npm run bench -- [--duration S] [--rounds N] [--verbose]

Runs pgbench -S (select-only, ${DEFAULTS.clients} clients, ${DEFAULTS.threads} threads) against the local
PostgreSQL (127.0.0.1:5432, user postgres) directly and through \`hoop connect\`, alternating,
and prints the median TPS of each path and the ratio hoop/direct.

  --duration S   seconds per run (default ${DEFAULTS.durationS}, env HOOP_BENCH_DURATION)
  --rounds N     runs per path, at least ${MIN_ROUNDS} (default ${DEFAULTS.rounds}, env HOOP_BENCH_ROUNDS)
  --verbose      show the hoop services' warnings
  -h, --help     this text`;

export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BenchOptions {
  let values: { duration?: string; rounds?: string; verbose?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        rounds: { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new BenchError(BenchErrorCode.usage, (err as Error).message);
  }
  const duration = values.duration ?? nonEmpty(env['HOOP_BENCH_DURATION']);
  const rounds = values.rounds ?? nonEmpty(env['HOOP_BENCH_ROUNDS']);
  return {
    durationS:
      duration === undefined ? DEFAULTS.durationS : positiveInteger('--duration', duration, 1),
    rounds:
      rounds === undefined ? DEFAULTS.rounds : positiveInteger('--rounds', rounds, MIN_ROUNDS),
    clients: DEFAULTS.clients,
    threads: DEFAULTS.threads,
    scale: DEFAULTS.scale,
    verbose: values.verbose === true,
    help: values.help === true,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function positiveInteger(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new BenchError(
      BenchErrorCode.usage,
      `${flag} must be a whole number ≥ ${min}, got "${value}"`,
    );
  }
  return n;
}
