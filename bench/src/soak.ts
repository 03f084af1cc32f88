/**
 * Soak: S seconds of connection churn through the fully policed hoop path
 * (`pgbench -S -C -c 4`: every transaction opens a session, runs guardrails, masking and
 * recording, and closes it), sampling broker, agent and connect RSS and open fds every second.
 *
 * Fails on open fds that grow in a sustained way (growth.ts), and on RSS that grows beyond
 * RSS_LIMITS *after a full garbage collection*: when the processes' inspectors are known, each
 * is collected (inspector.ts) once the warm-up is over and again when the load ends, and RSS is
 * read right after. RSS sampled under load follows when V8 happens to collect — a 60 s window can
 * start on a trough and end on a peak of garbage — so it decides only for a process without an
 * inspector.
 */

import { detectGrowth, type GrowthLimits } from './growth.js';
import { collectGarbage } from './inspector.js';
import { type Endpoint, runPgbench } from './pgbench.js';
import type { Env } from './processes.js';
import type { AfterGc, SoakResult, SoakSeries } from './report.js';
import { sampleAll, sampleProcess } from './sampling.js';

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
  /** Inspector addresses (`--inspect`) of the same processes, where known. */
  readonly inspectors?: Readonly<Record<string, string | undefined>>;
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

  const started = Date.now();
  const warmupMs = o.seconds * 1000 * RSS_LIMITS.warmupFraction;
  let atStart: Record<string, AfterGc> | undefined;
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
    if (atStart === undefined && Date.now() - started >= warmupMs) {
      atStart = await afterGc(o);
    }
    await Promise.race([load.catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
  }
  const summary = await load;
  const atEnd = atStart === undefined ? undefined : await afterGc(o);

  const processes: Record<string, SoakSeries> = {};
  const failures: string[] = [];
  for (const [name, s] of Object.entries(series)) {
    const rssGrowth = detectGrowth(s.rssKiB, RSS_LIMITS) ?? null;
    const fdsGrowth = detectGrowth(s.fds, FD_LIMITS) ?? null;
    const gc =
      atStart?.[name] !== undefined && atEnd?.[name] !== undefined
        ? { start: atStart[name], end: atEnd[name] }
        : null;
    processes[name] = { ...s, rssGrowth, fdsGrowth, afterGc: gc };
    if (gc !== null) {
      const growth = gc.end.rssKiB - gc.start.rssKiB;
      const ratio = growth / gc.start.rssKiB;
      if (growth > RSS_LIMITS.maxAbsolute && ratio > RSS_LIMITS.maxRatio) {
        failures.push(
          `${name} RSS after a full collection grew from ${(gc.start.rssKiB / 1024).toFixed(1)} to ${(gc.end.rssKiB / 1024).toFixed(1)} MiB (+${(ratio * 100).toFixed(0)} %, limit +${RSS_LIMITS.maxAbsolute / 1024} MiB and +${RSS_LIMITS.maxRatio * 100} %); JavaScript heap ${mib(gc.start.heapBytes)} → ${mib(gc.end.heapBytes)} MiB`,
        );
      }
    } else if (rssGrowth?.sustained) {
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
    collected: atStart !== undefined && Object.keys(atStart).length > 0,
    workload,
    transactions: summary.transactions ?? null,
    processes,
    failures,
  };
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Collects every process that has an inspector, then reads its RSS; a failed one is left out. */
async function afterGc(o: SoakOptions): Promise<Record<string, AfterGc>> {
  const out: Record<string, AfterGc> = {};
  for (const [name, url] of Object.entries(o.inspectors ?? {})) {
    const pid = o.pids[name];
    if (url === undefined || pid === undefined) continue;
    try {
      const { usedBytes } = await collectGarbage(url);
      const sample = await sampleProcess(pid);
      if (sample !== undefined) out[name] = { rssKiB: sample.rssKiB, heapBytes: usedBytes };
    } catch (err) {
      o.log(`bench: soak: could not collect ${name}'s garbage: ${(err as Error).message}`);
    }
  }
  return out;
}
