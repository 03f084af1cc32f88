/**
 * Resident memory of a process, from /proc/<pid>/status (VmRSS), and a sampler that reads it
 * for several processes every `intervalMs` while something runs.
 */
import { readFileSync } from 'node:fs';
import { sleep } from './wait.js';

export const MiB = 1024 * 1024;

/** VmRSS of `pid` in bytes. Throws if the process is gone or /proc is unavailable. */
export function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface RssSeries {
  readonly samples: number[];
  readonly min: number;
  readonly max: number;
}

export type RssReport<K extends string> = Record<K, RssSeries>;

/** Samples the RSS of each named pid every `intervalMs` until stopped. */
export class RssSampler<K extends string> {
  private readonly samples = new Map<K, number[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pids: Record<K, number>,
    private readonly intervalMs = 100,
  ) {
    for (const name of Object.keys(pids) as K[]) this.samples.set(name, []);
  }

  start(): this {
    this.sample();
    // unref: a sampler a failed test forgot to stop must not keep the test process alive.
    this.timer = setInterval(() => this.sample(), this.intervalMs).unref();
    return this;
  }

  stop(): RssReport<K> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return this.report();
  }

  report(): RssReport<K> {
    const out = {} as RssReport<K>;
    for (const [name, samples] of this.samples) {
      out[name] = { samples: [...samples], min: Math.min(...samples), max: Math.max(...samples) };
    }
    return out;
  }

  private sample(): void {
    for (const [name, pid] of Object.entries(this.pids) as [K, number][]) {
      try {
        this.samples.get(name)?.push(readRss(pid));
      } catch {
        // the process is gone; the test will notice that by itself
      }
    }
  }
}

/**
 * A process's idle RSS: the median of samples over `ms`. Taken after a warm-up session, so
 * one-off start-up garbage that the first session's GC releases is not counted as headroom.
 */
export async function idleRss(pid: number, ms = 500, intervalMs = 50): Promise<number> {
  const samples: number[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    samples.push(readRss(pid));
    await sleep(intervalMs);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
