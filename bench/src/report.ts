/** The bench's results: median per path, ratios, a markdown report and `latest.json`. */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const PATHS = ['direct', 'hoop'] as const;
export type PathName = (typeof PATHS)[number];

export const HOOP_PROCESSES = ['broker', 'agent', 'connect'] as const;
export type HoopProcess = (typeof HOOP_PROCESSES)[number];

export interface PathResult {
  /** TPS of each run, in run order. */
  readonly tps: number[];
  readonly median: number;
  /** pgbench's average latency of each run (ms); null when not printed. */
  readonly latencyMs: (number | null)[];
}

export interface BenchResults {
  readonly date: string;
  readonly workload: {
    readonly command: string;
    readonly durationS: number;
    readonly rounds: number;
    readonly clients: number;
    readonly threads: number;
    readonly scale: number;
  };
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly platform: string;
    readonly totalMemMiB: number;
  };
  readonly postgres: { readonly version: string; readonly address: string };
  readonly paths: Record<PathName, PathResult>;
  /** Median TPS of each path divided by the direct path's. */
  readonly ratios: { readonly hoop: number };
  /** RSS of each hoop process after each hoop run (KiB); null when unavailable. */
  readonly rssKiB: Record<HoopProcess, (number | null)[]>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function pathResult(runs: readonly { tps: number; latencyMs: number | undefined }[]) {
  const tps = runs.map((r) => r.tps);
  return { tps, median: median(tps), latencyMs: runs.map((r) => r.latencyMs ?? null) };
}

export function ratio(value: number, base: number): number {
  return base > 0 ? value / base : Number.NaN;
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}

export function formatTps(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** The markdown printed at the end of a run. */
export function renderReport(results: BenchResults): string {
  const { paths } = results;
  const lines = [
    '| path | median TPS | TPS per run | median latency | vs direct |',
    '| --- | ---: | --- | ---: | ---: |',
  ];
  for (const name of PATHS) {
    const path = paths[name];
    const latencies = path.latencyMs.filter((v): v is number => v !== null);
    lines.push(
      `| ${name} | ${formatTps(path.median)} | ${path.tps.map(formatTps).join(' · ')} | ${
        latencies.length === 0 ? 'n/a' : `${median(latencies).toFixed(3)} ms`
      } | ${formatRatio(ratio(path.median, paths.direct.median))} |`,
    );
  }
  lines.push('', `hoop/direct: ${formatRatio(results.ratios.hoop)}`);

  const runs = results.rssKiB.broker.length;
  if (runs > 0) {
    lines.push(
      '',
      `| process | ${Array.from({ length: runs }, (_, i) => `RSS after hoop run ${i + 1}`).join(' | ')} |`,
      `| --- |${' ---: |'.repeat(runs)}`,
    );
    for (const name of HOOP_PROCESSES) {
      const cells = results.rssKiB[name].map((kib) =>
        kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`,
      );
      lines.push(`| ${name} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** Writes `<dir>/latest.json` and returns its path. */
export async function writeResults(dir: string, results: BenchResults): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}
