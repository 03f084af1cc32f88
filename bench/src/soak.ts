/**
 * Soak: S seconds of connection churn through the fully policed hoop path
 * (`pgbench -S -C -c 4`: every transaction opens a session, runs guardrails, masking and
 * recording, and closes it), sampling broker, agent and connect RSS and open fds every second.
 * Fails when any of them grows in a sustained way (growth.ts) beyond these limits.
 */

import { detectGrowth, type GrowthLimits } from './growth.js';
import { type Endpoint, runPgbench } from './pgbench.js';
import type { Env } from './processes.js';
import type { SoakResult, SoakSeries } from './report.js';
import { sampleAll } from './sampling.js';

export const RSS_LIMITS: GrowthLimits = {
  warmupFraction: 0.25,
  windowFraction: 0.2,
  maxAbsolute: 32 * 1024, // KiB
  maxRatio: 0.25,
};

export const FD_LIMITS: GrowthLimits = {
  warmupFraction: 0.25,
  windowFraction: 0.2,
  maxAbsolute: 16,
  maxRatio: 0.25,
};

const CLIENTS = 4;

export interface SoakOptions {
  readonly endpoint: Endpoint;
  readonly pids: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly cpus: number;
  readonly env: Env;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const threads = Math.min(CLIENTS, o.cpus);
  const workload = `pgbench -S -C -c ${CLIENTS} -j ${threads} through hoop with all policies`;
  o.log(`bench: soak: ${o.seconds} s of ${workload}…`);
  const series: Record<string, { rssKiB: number[]; fds: number[] }> = {};
  for (const name of Object.keys(o.pids)) series[name] = { rssKiB: [], fds: [] };

  let finished = false;
  const load = runPgbench({
    endpoint: o.endpoint,
    clients: CLIENTS,
    threads,
    durationS: o.seconds,
    connectEach: true,
    env: o.env,
    signal: o.signal,
  }).finally(() => {
    finished = true;
  });
  load.catch(() => {}); // awaited below; keep it from being "unhandled" while we sample
  while (!finished) {
    const samples = await sampleAll(o.pids);
    for (const [name, s] of Object.entries(samples)) {
      series[name]?.rssKiB.push(s.rssKiB);
      series[name]?.fds.push(s.fds);
    }
    await Promise.race([load.catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
  }
  const summary = await load;

  const processes: Record<string, SoakSeries> = {};
  const failures: string[] = [];
  for (const [name, s] of Object.entries(series)) {
    const rssGrowth = detectGrowth(s.rssKiB, RSS_LIMITS) ?? null;
    const fdsGrowth = detectGrowth(s.fds, FD_LIMITS) ?? null;
    processes[name] = { ...s, rssGrowth, fdsGrowth };
    if (rssGrowth?.sustained) {
      failures.push(
        `${name} RSS grew from ${(rssGrowth.first / 1024).toFixed(1)} to ${(rssGrowth.last / 1024).toFixed(1)} MiB (+${(rssGrowth.ratio * 100).toFixed(0)} %, limit +${RSS_LIMITS.maxAbsolute / 1024} MiB and +${RSS_LIMITS.maxRatio * 100} %)`,
      );
    }
    if (fdsGrowth?.sustained) {
      failures.push(
        `${name} open fds grew from ${fdsGrowth.first} to ${fdsGrowth.last} (limit +${FD_LIMITS.maxAbsolute} and +${FD_LIMITS.maxRatio * 100} %)`,
      );
    }
  }
  return {
    seconds: o.seconds,
    workload,
    transactions: summary.transactions ?? null,
    processes,
    failures,
  };
}
