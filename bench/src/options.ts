/** Flags and environment of `npm run bench`, validated and defaulted in one place. */

import { parseArgs } from 'node:util';
import { BenchError, BenchErrorCode } from './errors.js';

export const CASES = ['pgbench', 'copy', 'wan', 'store', 'scale', 'soak'] as const;
export type CaseName = (typeof CASES)[number];

export interface BenchOptions {
  /** Seconds per pgbench run (pgbench -T), for every mode, client count and `-C`. */
  readonly durationS: number;
  /** Runs per path; paths alternate within each round. */
  readonly rounds: number;
  /** pgbench -i -s */
  readonly scale: number;
  /** pgbench client counts (-c). */
  readonly clients: readonly number[];
  /** Approximate size of the COPY-out transfer, in MB. */
  readonly copyMB: number;
  /** Idle sessions opened through one `hoop connect` in the scale case. */
  readonly sessions: number;
  /** Seconds of the soak. */
  readonly soakS: number;
  /** Round-trip time of the slow link in the wan case, ms (half of it each way). */
  readonly rttMs: number;
  /** Cases to run, in this order. */
  readonly only: readonly CaseName[];
  readonly quick: boolean;
  /** Forward the services' stderr (warnings) to ours. */
  readonly verbose: boolean;
  readonly help: boolean;
}

export const DEFAULTS = {
  durationS: 5,
  rounds: 2,
  scale: 10,
  clients: [1, 8, 32],
  copyMB: 100,
  sessions: 1000,
  soakS: 60,
  rttMs: 20,
} as const;

/** `--quick`: a smoke run of every case in about two minutes. */
export const QUICK = {
  durationS: 2,
  rounds: 2,
  scale: 2,
  clients: [8],
  copyMB: 10,
  sessions: 200,
  soakS: 10,
  rttMs: 20,
} as const;

/** Alternation needs at least two runs of each path to say anything about noise. */
export const MIN_ROUNDS = 2;

export const USAGE = `usage: npm run bench -- [--quick] [--only pgbench,copy,wan,store,scale,soak] [--duration S]
                        [--rounds N] [--soak S] [--sessions N] [--rtt MS] [--verbose]

Compares, in alternation, paths to the local PostgreSQL (127.0.0.1:5432, user postgres):
direct, pgbouncer (session mode), ssh -L through a local sshd, hoop without policy (raw relay)
through hoop connect and through the broker's native Postgres endpoint, and hoop with
guardrails + masking + recording. Prints markdown tables and ratios against direct, and writes
bench/results/latest.json. The wan case measures connection setup with a slow link (--rtt) on
the far leg of each path: direct to PostgreSQL, ssh to sshd, hoop connect and psql to the broker.
The store case measures hoop's connection setup with the broker's store (PostgreSQL) --rtt away,
for an agent that logs in while the session is recorded and one that waits (strict admission).

  --quick        smoke run: ${QUICK.durationS} s per pgbench run, -c ${QUICK.clients.join('/')} only, ${QUICK.copyMB} MB COPY,
                 ${QUICK.sessions} idle sessions, ${QUICK.soakS} s soak
  --only LIST    cases to run, comma-separated: ${CASES.join(',')} (default all)
  --duration S   seconds per pgbench run (default ${DEFAULTS.durationS}, env HOOP_BENCH_DURATION)
  --rounds N     runs per path, at least ${MIN_ROUNDS} (default ${DEFAULTS.rounds}, env HOOP_BENCH_ROUNDS)
  --soak S       seconds of the soak (default ${DEFAULTS.soakS}, env HOOP_BENCH_SOAK)
  --sessions N   idle sessions in the scale case (default ${DEFAULTS.sessions})
  --rtt MS       round trip of the slow link in the wan and store cases (default ${DEFAULTS.rttMs})
  --verbose      show the services' warnings
  -h, --help     this text`;

export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BenchOptions {
  let values: {
    duration?: string;
    rounds?: string;
    soak?: string;
    sessions?: string;
    rtt?: string;
    only?: string;
    quick?: boolean;
    verbose?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        rounds: { type: 'string' },
        soak: { type: 'string' },
        sessions: { type: 'string' },
        rtt: { type: 'string' },
        only: { type: 'string' },
        quick: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new BenchError(BenchErrorCode.usage, (err as Error).message);
  }
  const quick = values.quick === true;
  const base = quick ? QUICK : DEFAULTS;
  const duration = values.duration ?? nonEmpty(env['HOOP_BENCH_DURATION']);
  const rounds = values.rounds ?? nonEmpty(env['HOOP_BENCH_ROUNDS']);
  const soak = values.soak ?? nonEmpty(env['HOOP_BENCH_SOAK']);
  return {
    durationS: duration === undefined ? base.durationS : wholeNumber('--duration', duration, 1),
    rounds: rounds === undefined ? base.rounds : wholeNumber('--rounds', rounds, MIN_ROUNDS),
    scale: base.scale,
    clients: base.clients,
    copyMB: base.copyMB,
    sessions:
      values.sessions === undefined ? base.sessions : wholeNumber('--sessions', values.sessions, 1),
    soakS: soak === undefined ? base.soakS : wholeNumber('--soak', soak, 5),
    rttMs: values.rtt === undefined ? base.rttMs : wholeNumber('--rtt', values.rtt, 2),
    only: values.only === undefined ? CASES : parseCases(values.only),
    quick,
    verbose: values.verbose === true,
    help: values.help === true,
  };
}

function parseCases(list: string): CaseName[] {
  const wanted = new Set<string>();
  for (const item of list.split(',')) {
    const name = item.trim();
    if (name === '') continue;
    if (!(CASES as readonly string[]).includes(name)) {
      throw new BenchError(
        BenchErrorCode.usage,
        `--only: unknown case "${name}" (cases: ${CASES.join(', ')})`,
      );
    }
    wanted.add(name);
  }
  if (wanted.size === 0) throw new BenchError(BenchErrorCode.usage, '--only: no case named');
  return CASES.filter((c) => wanted.has(c));
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new BenchError(
      BenchErrorCode.usage,
      `${flag} must be a whole number ≥ ${min}, got "${value}"`,
    );
  }
  return n;
}
