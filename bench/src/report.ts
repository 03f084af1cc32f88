/** The bench's results: typed shape of `latest.json`, ratios against direct, targets, markdown. */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Growth } from './growth.js';
import type { ProcSample } from './sampling.js';

/**
 * Every path, in report order; `hoop-native` is `hoop`'s connection without `hoop connect`;
 * `hoop-warm` is `hoop` served by an agent with HOOP_PG_WARM=1 (the setup case only);
 * `hoop-strict` is `hoop` served by an agent with HOOP_AGENT_ADMISSION=strict (the store case);
 * `relay` is the reference floor: three bare Node.js TCP relays in a chain (relay.ts);
 * `hoop-direct` and `hoop-direct-policy` are the same two connections through the agent's direct
 * endpoint (HOOP_AGENT_PG_LISTEN: pgbench connects to the agent, the broker only authorizes).
 */
export const PATHS = [
  'direct',
  'pgbouncer',
  'ssh',
  'relay',
  'hoop',
  'hoop-warm',
  'hoop-strict',
  'hoop-native',
  'hoop-policy',
  'hoop-direct',
  'hoop-direct-policy',
] as const;
export type PathName = (typeof PATHS)[number];

export const PATH_LABELS: Record<PathName, string> = {
  direct: 'direct',
  pgbouncer: 'pgbouncer (session)',
  ssh: 'ssh -L',
  relay: '3 bare Node relays',
  hoop: 'hoop, no policy',
  'hoop-warm': 'hoop, no policy, warm target connection',
  'hoop-strict': 'hoop, no policy, strict admission',
  'hoop-native': 'hoop native endpoint, no policy',
  'hoop-policy': 'hoop, all policies',
  'hoop-direct': "hoop agent's direct endpoint, no policy",
  'hoop-direct-policy': "hoop agent's direct endpoint, all policies",
};

export interface PgbenchCell {
  readonly mode: string;
  readonly clients: number;
  readonly path: PathName;
  /** TPS of each run, in run order. */
  readonly tps: number[];
  readonly medianTps: number;
  /** Percentiles over every transaction of every run (pgbench -l), ms. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly ratio: number | null;
}

export interface ConnectCell {
  readonly path: PathName;
  readonly tps: number[];
  readonly medianTps: number;
  /** Median of pgbench's "average connection time", ms. */
  readonly connectionMs: number | null;
  readonly overDirectMs: number | null;
  readonly ratio: number | null;
}

/** Connection setup with a slow link on each path's far leg (the `wan` case). */
export interface WanResult {
  /** Round trip of the slow link, ms (half each way). */
  readonly rttMs: number;
  readonly connect: ConnectCell[];
}

/** Connection setup with the broker's store behind a slow link (the `store` case). */
export interface StoreLatencyResult {
  /** Round trip between the broker and its store, ms. */
  readonly rttMs: number;
  readonly connect: ConnectCell[];
}

/** Which leg of each path the wan case slows down. */
export const WAN_LEGS: Partial<Record<PathName, string>> = {
  direct: 'pgbench ⇄ PostgreSQL',
  ssh: 'ssh ⇄ sshd',
  hoop: 'hoop connect ⇄ broker',
  'hoop-native': 'pgbench ⇄ broker',
};

export interface CopyCell {
  readonly path: PathName;
  readonly seconds: number[];
  /** Bytes psql wrote (first run); masking may change it slightly per path. */
  readonly bytes: number;
  readonly mbPerS: number;
  readonly ratio: number | null;
}

export interface ScaleResult {
  /** The broker's store: `embedded` (PGlite, the default) or `postgres` (HOOP_DATABASE_URL). */
  readonly store: 'embedded' | 'postgres';
  readonly sessions: number;
  readonly opened: number;
  readonly openSeconds: number;
  readonly target: string;
  /** How long processes sat idle before "before" and "idle" were sampled. */
  readonly idleSeconds: number;
  /**
   * Per process: before opening, right after opening (2 s), with every session idle for
   * `idleSeconds`, and after closing them.
   */
  readonly processes: Record<
    string,
    { before?: ProcSample; justOpened?: ProcSample; idle?: ProcSample; after?: ProcSample }
  >;
}

/** A process right after a full garbage collection (soak.ts). */
export interface AfterGc {
  readonly rssKiB: number;
  /** Its main thread's JavaScript heap in use. */
  readonly heapBytes: number;
}

export interface SoakSeries {
  readonly rssKiB: number[];
  readonly fds: number[];
  readonly rssGrowth: Growth | null;
  readonly fdsGrowth: Growth | null;
  /** After a full collection once the warm-up is over, and when the load ended. */
  readonly afterGc: { readonly start: AfterGc; readonly end: AfterGc } | null;
}

export interface SoakResult {
  readonly seconds: number;
  /** Whether the processes were collected through their inspectors (the RSS verdict's basis). */
  readonly collected: boolean;
  readonly workload: string;
  readonly transactions: number | null;
  readonly processes: Record<string, SoakSeries>;
  /** One line per sustained growth; empty when the soak passed. */
  readonly failures: string[];
}

export interface TargetCheck {
  readonly name: string;
  readonly want: string;
  readonly actual: string;
  /** null when not measured in this run. */
  readonly met: boolean | null;
}

export interface BenchResults {
  readonly date: string;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly platform: string;
    readonly totalMemMiB: number;
  };
  readonly postgres: { readonly version: string; readonly address: string };
  readonly settings: Record<string, unknown>;
  /** Paths that ran; the others are in `skipped`. */
  readonly paths: PathName[];
  readonly skipped: { what: string; reason: string }[];
  readonly pgbench: PgbenchCell[];
  readonly connect: ConnectCell[];
  readonly copy: CopyCell[];
  /** null when the wan case did not run. */
  readonly wan: WanResult | null;
  /** null when the store case did not run (absent in results of older runs). */
  readonly store?: StoreLatencyResult | null;
  readonly scale: ScaleResult | null;
  /** The same scale case with the broker on a PostgreSQL store; null when not run. */
  readonly scaleOnPostgres: ScaleResult | null;
  readonly soak: SoakResult | null;
  /** Flat map, e.g. "pgbench.simple.c8.hoop": 0.42 — each path's median over direct's. */
  readonly ratios: Record<string, number>;
  readonly targets: TargetCheck[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function ratio(value: number, base: number): number | null {
  return base > 0 && Number.isFinite(value) ? value / base : null;
}

export function formatRatio(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? 'n/a'
    : `${value.toFixed(2)}×`;
}

/** A difference to direct in ms with its sign (`+3.30 ms`), or n/a. */
export function formatOver(overMs: number | null, digits: number): string {
  if (overMs === null) return 'n/a';
  return `${overMs >= 0 ? '+' : ''}${overMs.toFixed(digits)} ms`;
}

export function formatTps(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

function ms(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined ? 'n/a' : `${value.toFixed(digits)} ms`;
}

function mib(kib: number | undefined): string {
  return kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
}

/** Every ratio against direct, keyed for machines. */
export function collectRatios(
  r: Pick<BenchResults, 'pgbench' | 'connect' | 'copy'>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of r.pgbench)
    if (c.path !== 'direct' && c.ratio !== null)
      out[`pgbench.${c.mode}.c${c.clients}.${c.path}`] = c.ratio;
  for (const c of r.connect)
    if (c.path !== 'direct' && c.ratio !== null) out[`connect.${c.path}`] = c.ratio;
  for (const c of r.copy)
    if (c.path !== 'direct' && c.ratio !== null) out[`copy.${c.path}`] = c.ratio;
  return out;
}

/** The issue's targets, checked against what this run measured. */
export function checkTargets(
  r: Pick<BenchResults, 'pgbench' | 'connect' | 'copy' | 'scale'> &
    Partial<Pick<BenchResults, 'scaleOnPostgres'>>,
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const atLeast = (name: string, value: number | null | undefined, min: number) =>
    checks.push({
      name,
      want: `≥ ${min.toFixed(2)}× direct`,
      actual: formatRatio(value),
      met: value === null || value === undefined ? null : value >= min,
    });
  const c8 = (path: PathName) =>
    r.pgbench.find((c) => c.mode === 'simple' && c.clients === 8 && c.path === path)?.ratio;
  for (const [raw, policed, via] of [
    ['hoop', 'hoop-policy', 'hoop'],
    ['hoop-direct', 'hoop-direct-policy', "hoop agent's direct endpoint,"],
  ] as const) {
    atLeast(`pgbench -S -c 8 (simple), ${via} no policy`, c8(raw), 0.5);
    atLeast(`pgbench -S -c 8 (simple), ${via} all policies`, c8(policed), 0.4);
    atLeast(`COPY out, ${via} no policy`, r.copy.find((c) => c.path === raw)?.ratio, 0.8);
  }
  for (const path of ['hoop', 'hoop-warm', 'hoop-policy', 'hoop-direct'] as const) {
    const over = r.connect.find((c) => c.path === path)?.overDirectMs;
    checks.push({
      name: `connection setup, ${PATH_LABELS[path]}`,
      want: '≤ 5 ms over direct',
      actual:
        over === null || over === undefined
          ? 'n/a'
          : `${over >= 0 ? '+' : ''}${over.toFixed(2)} ms`,
      met: over === null || over === undefined ? null : over <= 5,
    });
  }
  const brokerRss = (scale: ScaleResult | null | undefined, store: string) => {
    const broker = scale?.processes['broker']?.idle?.rssKiB;
    checks.push({
      name: `${scale?.opened ?? 1000} idle sessions, broker RSS${store}`,
      want: '≤ 150 MB (1,000 sessions)',
      actual: broker === undefined ? 'n/a' : `${((broker * 1024) / 1e6).toFixed(0)} MB`,
      met:
        broker === undefined || (scale?.opened ?? 0) < 1000 ? null : (broker * 1024) / 1e6 <= 150,
    });
  };
  brokerRss(r.scale, '');
  if (r.scaleOnPostgres !== undefined && r.scaleOnPostgres !== null) {
    brokerRss(r.scaleOnPostgres, ' (PostgreSQL store)');
  }
  return checks;
}

/** The markdown printed at the end of a run. */
export function renderReport(r: BenchResults): string {
  const out: string[] = [];
  if (r.pgbench.length > 0) {
    // With the relay floor measured, each row also says how it compares with three bare relays.
    const floor = r.pgbench.some((c) => c.path === 'relay');
    const relayTps = (c: PgbenchCell) =>
      r.pgbench.find((f) => f.path === 'relay' && f.mode === c.mode && f.clients === c.clients)
        ?.medianTps ?? Number.NaN;
    out.push(
      '## pgbench -S (select-only): TPS, median of the runs; latency percentiles from pgbench -l',
      '',
      `| mode | clients | path | median TPS | TPS per run | p50 | p99 | vs direct |${floor ? ' vs 3 relays |' : ''}`,
      `| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |${floor ? ' ---: |' : ''}`,
    );
    for (const c of r.pgbench) {
      const vsFloor = floor ? ` ${formatRatio(ratio(c.medianTps, relayTps(c)))} |` : '';
      out.push(
        `| ${c.mode} | ${c.clients} | ${PATH_LABELS[c.path]} | ${formatTps(c.medianTps)} | ${c.tps.map(formatTps).join(' · ')} | ${ms(c.p50Ms, 3)} | ${ms(c.p99Ms, 3)} | ${formatRatio(c.ratio)} |${vsFloor}`,
      );
    }
    out.push('');
  }
  if (r.connect.length > 0) {
    out.push(
      '## Connection setup: pgbench -S -C -c 1 (a new connection per transaction)',
      '',
      '| path | median TPS | connection time | over direct | vs direct |',
      '| --- | ---: | ---: | ---: | ---: |',
    );
    for (const c of r.connect) {
      const over = formatOver(c.overDirectMs, 2);
      out.push(
        `| ${PATH_LABELS[c.path]} | ${formatTps(c.medianTps)} | ${ms(c.connectionMs)} | ${over} | ${formatRatio(c.ratio)} |`,
      );
    }
    out.push('');
  }
  if (r.copy.length > 0) {
    const mb = ((r.copy[0]?.bytes ?? 0) / 1e6).toFixed(0);
    out.push(
      `## COPY (select …) TO STDOUT, ${mb} MB through psql`,
      '',
      '| path | MB/s (median) | seconds per run | vs direct |',
      '| --- | ---: | --- | ---: |',
    );
    for (const c of r.copy) {
      out.push(
        `| ${PATH_LABELS[c.path]} | ${c.mbPerS.toFixed(1)} | ${c.seconds.map((s) => s.toFixed(2)).join(' · ')} | ${formatRatio(c.ratio)} |`,
      );
    }
    out.push('');
  }
  if (r.wan !== null && r.wan.connect.length > 0) {
    const { rttMs } = r.wan;
    out.push(
      `## Connection setup over a slow link: pgbench -S -C -c 1, ${rttMs} ms round trip on the far leg`,
      '',
      '| path | slow leg | connection time | in round trips | over direct |',
      '| --- | --- | ---: | ---: | ---: |',
    );
    for (const c of r.wan.connect) {
      const over = formatOver(c.overDirectMs, 1);
      const trips = c.connectionMs === null ? 'n/a' : (c.connectionMs / rttMs).toFixed(1);
      out.push(
        `| ${PATH_LABELS[c.path]} | ${WAN_LEGS[c.path] ?? 'n/a'} | ${ms(c.connectionMs)} | ${trips} | ${over} |`,
      );
    }
    out.push('');
  }
  if (r.store !== undefined && r.store !== null && r.store.connect.length > 0) {
    out.push(
      `## Connection setup with the broker's store ${r.store.rttMs} ms away: pgbench -S -C -c 1`,
      '',
      '| path | connection time | over direct |',
      '| --- | ---: | ---: |',
    );
    for (const c of r.store.connect) {
      const over = formatOver(c.overDirectMs, 2);
      out.push(`| ${PATH_LABELS[c.path]} | ${ms(c.connectionMs)} | ${over} |`);
    }
    out.push('');
  }
  for (const s of [r.scale, r.scaleOnPostgres]) {
    if (s === null) continue;
    const store =
      s.store === 'postgres' ? 'broker on a PostgreSQL store' : 'broker on its embedded store';
    out.push(
      `## Scale: ${s.opened}/${s.sessions} idle sessions through one hoop connect (${store}; ${s.target}), opened in ${s.openSeconds.toFixed(1)} s`,
      '',
      `| process | RSS before | RSS just opened | RSS idle ${s.idleSeconds} s | per session | fds before | fds idle | RSS / fds after closing |`,
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const [name, p] of Object.entries(s.processes)) {
      const per =
        p.before && p.idle && s.opened > 0
          ? `${((p.idle.rssKiB - p.before.rssKiB) / s.opened).toFixed(1)} KiB`
          : 'n/a';
      out.push(
        `| ${name} | ${mib(p.before?.rssKiB)} | ${mib(p.justOpened?.rssKiB)} | ${mib(p.idle?.rssKiB)} | ${per} | ${p.before?.fds ?? 'n/a'} | ${p.idle?.fds ?? 'n/a'} | ${mib(p.after?.rssKiB)} / ${p.after?.fds ?? 'n/a'} |`,
      );
    }
    out.push('');
  }
  if (r.soak !== null) {
    const s = r.soak;
    out.push(
      `## Soak: ${s.seconds} s of ${s.workload}, sampled every second`,
      '',
      '| process | RSS after warm-up → end | after a full GC: RSS | after a full GC: JS heap | fds after warm-up → end | verdict |',
      '| --- | ---: | ---: | ---: | ---: | --- |',
    );
    for (const [name, p] of Object.entries(s.processes)) {
      const g = (x: Growth | null, f: (v: number) => string) =>
        x === null ? 'n/a' : `${f(x.first)} → ${f(x.last)}`;
      const gc = p.afterGc;
      const gcRss = gc === null ? 'n/a' : `${mib(gc.start.rssKiB)} → ${mib(gc.end.rssKiB)}`;
      const gcHeap =
        gc === null ? 'n/a' : `${mib(gc.start.heapBytes / 1024)} → ${mib(gc.end.heapBytes / 1024)}`;
      const growing = s.failures.some((f) => f.startsWith(`${name} `));
      out.push(
        `| ${name} | ${g(p.rssGrowth, mib)} | ${gcRss} | ${gcHeap} | ${g(p.fdsGrowth, (v) => v.toFixed(0))} | ${growing ? '**growing**' : 'flat'} |`,
      );
    }
    out.push(
      '',
      s.failures.length === 0
        ? 'soak: passed (no sustained growth)'
        : `soak: FAILED\n${s.failures.map((f) => `- ${f}`).join('\n')}`,
      '',
    );
  }
  const ratios = Object.entries(r.ratios);
  if (ratios.length > 0) {
    out.push(
      '## Ratios against direct',
      '',
      ...ratios.map(([k, v]) => `${k}: ${formatRatio(v)}`),
      '',
    );
  }
  out.push('## Targets (for the report, not asserts)', '');
  for (const t of r.targets) {
    out.push(
      `- ${t.met === null ? '·' : t.met ? '✓' : '✗'} ${t.name}: ${t.actual} (want ${t.want})`,
    );
  }
  if (r.skipped.length > 0) {
    out.push('', '## Skipped', '', ...r.skipped.map((s) => `- ${s.what}: ${s.reason}`));
  }
  return out.join('\n');
}

/** Writes `<dir>/latest.json` and returns its path. */
export async function writeResults(dir: string, results: BenchResults): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}
