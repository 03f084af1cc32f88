/**
 * Resource samples of a running process from /proc (Linux): resident memory (VmRSS in
 * /proc/PID/status) and open file descriptors (entries of /proc/PID/fd). Off Linux, or once the
 * process is gone, a sample is undefined.
 */

import { readdir, readFile } from 'node:fs/promises';

export interface ProcSample {
  readonly rssKiB: number;
  readonly fds: number;
}

/** VmRSS in KiB from the text of /proc/PID/status; undefined when absent. */
export function parseVmRss(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(status);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export async function sampleProcess(
  pid: number,
  procRoot = '/proc',
): Promise<ProcSample | undefined> {
  try {
    const [status, fds] = await Promise.all([
      readFile(`${procRoot}/${pid}/status`, 'utf8'),
      readdir(`${procRoot}/${pid}/fd`),
    ]);
    const rssKiB = parseVmRss(status);
    return rssKiB === undefined ? undefined : { rssKiB, fds: fds.length };
  } catch {
    return undefined;
  }
}

/** Samples several named processes at once; a missing one is left out. */
export async function sampleAll(
  pids: Readonly<Record<string, number>>,
  procRoot = '/proc',
): Promise<Record<string, ProcSample>> {
  const entries = await Promise.all(
    Object.entries(pids).map(
      async ([name, pid]) => [name, await sampleProcess(pid, procRoot)] as const,
    ),
  );
  return Object.fromEntries(entries.filter((e): e is [string, ProcSample] => e[1] !== undefined));
}

export function mib(kib: number | null | undefined): string {
  return kib === null || kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
}
