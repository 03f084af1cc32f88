/**
 * The pgbench cases, alternating paths within every round so that drift on the machine hits all
 * paths alike: select-only in simple and prepared mode at each client count (latency percentiles
 * from pgbench's per-transaction log), and connection setup (`-C -c 1`).
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LatencyHistogram, readPgbenchLogs } from './latency.js';
import { type Endpoint, QUERY_MODES, type QueryMode, runPgbench } from './pgbench.js';
import type { Env } from './processes.js';
import {
  type ConnectCell,
  formatTps,
  median,
  type PathName,
  type PgbenchCell,
  ratio,
} from './report.js';

export interface MatrixOptions {
  readonly endpoints: ReadonlyMap<PathName, Endpoint>;
  readonly clients: readonly number[];
  readonly rounds: number;
  readonly durationS: number;
  readonly cpus: number;
  readonly logDir: string;
  readonly env: Env;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

interface Acc {
  tps: number[];
  histogram: LatencyHistogram;
}

/** Longest warm-up run per path and mode, in seconds. */
export const WARM_UP_MAX_S = 3;
/** Clients of the warm-up runs, at most. */
export const WARM_UP_MAX_CLIENTS = 8;

/**
 * The warm-up before the measured rounds: one short run per path and mode, not counted. A fresh
 * Node.js process runs its relay code unoptimized at first: a new hoop at `pgbench -c 1` went
 * 1,155 → 2,193 → 2,546 → 2,719 TPS over four 5 s intervals. Without it the first cells of round
 * 1 measure V8's compiler for the Node.js paths (hoop, the relays) and not for the others.
 */
export function warmUpPlan(
  clients: readonly number[],
  durationS: number,
): { clients: number; durationS: number } {
  return {
    clients: Math.min(WARM_UP_MAX_CLIENTS, Math.max(1, ...clients)),
    durationS: Math.max(1, Math.min(WARM_UP_MAX_S, Math.round(durationS))),
  };
}

async function warmUp(o: MatrixOptions): Promise<void> {
  const plan = warmUpPlan(o.clients, o.durationS);
  for (const mode of QUERY_MODES) {
    for (const [path, endpoint] of o.endpoints) {
      const summary = await runPgbench({
        endpoint,
        clients: plan.clients,
        threads: Math.min(plan.clients, o.cpus),
        durationS: plan.durationS,
        mode,
        env: o.env,
        signal: o.signal,
      });
      o.log(
        `bench: warm-up -S -M ${mode.padEnd(8)} -c ${String(plan.clients).padStart(2)} ${path.padEnd(11)} ${formatTps(summary.tps).padStart(8)} tps (not counted)`,
      );
    }
  }
}

export async function runSelectMatrix(o: MatrixOptions): Promise<PgbenchCell[]> {
  await mkdir(o.logDir, { recursive: true });
  await warmUp(o);
  const key = (mode: QueryMode, clients: number, path: PathName) => `${mode}/${clients}/${path}`;
  const acc = new Map<string, Acc>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const mode of QUERY_MODES) {
      for (const clients of o.clients) {
        for (const [path, endpoint] of o.endpoints) {
          const logPrefix = join(o.logDir, 'tx');
          const summary = await runPgbench({
            endpoint,
            clients,
            threads: Math.min(clients, o.cpus),
            durationS: o.durationS,
            mode,
            logPrefix,
            env: o.env,
            signal: o.signal,
          });
          const k = key(mode, clients, path);
          const entry = acc.get(k) ?? { tps: [], histogram: new LatencyHistogram() };
          acc.set(k, entry);
          entry.tps.push(summary.tps);
          await readPgbenchLogs(logPrefix, entry.histogram);
          o.log(
            `bench: round ${round}/${o.rounds} -S -M ${mode.padEnd(8)} -c ${String(clients).padStart(2)} ${path.padEnd(11)} ${formatTps(summary.tps).padStart(8)} tps`,
          );
        }
      }
    }
  }
  const cells: PgbenchCell[] = [];
  for (const mode of QUERY_MODES) {
    for (const clients of o.clients) {
      const direct = acc.get(key(mode, clients, 'direct'));
      const directMedian = direct === undefined ? Number.NaN : median(direct.tps);
      for (const path of o.endpoints.keys()) {
        const entry = acc.get(key(mode, clients, path));
        if (entry === undefined) continue;
        const medianTps = median(entry.tps);
        const h = entry.histogram;
        cells.push({
          mode,
          clients,
          path,
          tps: entry.tps,
          medianTps,
          p50Ms: h.count === 0 ? null : h.percentile(50) / 1000,
          p99Ms: h.count === 0 ? null : h.percentile(99) / 1000,
          ratio: ratio(medianTps, directMedian),
        });
      }
    }
  }
  return cells;
}

export async function runConnectMatrix(o: MatrixOptions): Promise<ConnectCell[]> {
  const runs = new Map<PathName, { tps: number[]; connectionMs: number[] }>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const [path, endpoint] of o.endpoints) {
      const summary = await runPgbench({
        endpoint,
        clients: 1,
        threads: 1,
        durationS: o.durationS,
        connectEach: true,
        env: o.env,
        signal: o.signal,
      });
      const entry = runs.get(path) ?? { tps: [], connectionMs: [] };
      runs.set(path, entry);
      entry.tps.push(summary.tps);
      if (summary.connectionMs !== undefined) entry.connectionMs.push(summary.connectionMs);
      o.log(
        `bench: round ${round}/${o.rounds} -S -C -c  1 ${path.padEnd(11)} ${formatTps(summary.tps).padStart(8)} tps, connection ${summary.connectionMs?.toFixed(3) ?? 'n/a'} ms`,
      );
    }
  }
  const direct = runs.get('direct');
  const directTps = direct === undefined ? Number.NaN : median(direct.tps);
  const directMs =
    direct === undefined || direct.connectionMs.length === 0 ? null : median(direct.connectionMs);
  return [...runs].map(([path, entry]) => {
    const medianTps = median(entry.tps);
    const connectionMs = entry.connectionMs.length === 0 ? null : median(entry.connectionMs);
    return {
      path,
      tps: entry.tps,
      medianTps,
      connectionMs,
      overDirectMs: connectionMs === null || directMs === null ? null : connectionMs - directMs,
      ratio: ratio(medianTps, directTps),
    };
  });
}
