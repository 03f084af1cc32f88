/**
 * Creates a fresh PGlite data directory in a short-lived child process. Running initdb inside
 * PGlite grows its WebAssembly memory to ~800 MB, and WebAssembly memory never shrinks: doing it
 * in the long-lived broker would keep that forever. Reopening the initialised directory in the
 * broker costs ~250 MB instead.
 *
 * initdb takes seconds (~5 s on a 2-core machine); `hoop up` needs two embedded databases (the
 * store and the demo target), so `initializePgliteDataDirs` runs it once and copies the pristine
 * result for the others.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HoopError } from '@hoop/shared';
import { syncDirectory, syncTree } from './pglite-durable-fs.js';

const script = `
const [url, dir] = process.argv.slice(1);
const { PGlite } = await import(url);
const db = await PGlite.create(dir);
await db.close();
`;

export function isPgliteDataDir(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION'));
}

export async function initializePgliteDataDir(dir: string, timeoutMs = 120_000): Promise<boolean> {
  if (isPgliteDataDir(dir)) return false;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const url = import.meta.resolve('@electric-sql/pglite');
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      // initdb runs each of PostgreSQL's functions briefly, once: V8's optimizing recompilation
      // of the hot ones costs more than it saves (wasm-tier.ts). Measured: 4.7-4.8 -> 4.3-4.4 s,
      // 4.8 -> 3.3 s of CPU.
      ['--liftoff-only', '--input-type=module', '-e', script, url, dir],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (err === null) resolve();
        else
          reject(
            new HoopError(
              'INTERNAL',
              `initialising the embedded database in ${dir} failed: ${stderr.trim() || err.message}`,
            ),
          );
      },
    );
  });
  // PGlite's initdb never fsyncs: make the new directory durable once, as initdb --sync does.
  syncTree(dir);
  return true;
}

/** What `initializePgliteDataDirs` did: one initdb, and the directories that are copies of it. */
export interface InitializedDirs {
  readonly initialized: readonly string[];
  readonly copied: readonly string[];
}

/**
 * Makes every directory in `dirs` a PGlite data directory, leaving existing ones alone. initdb
 * runs once; each other directory that is absent or empty gets a copy of that fresh result,
 * taken before anything opens it (so no data is shared), staged beside it and renamed into place
 * so an interrupted copy leaves nothing half made. A directory that already holds other files
 * is not copied over: it gets its own initdb, as `initializePgliteDataDir` would give it.
 */
export async function initializePgliteDataDirs(
  dirs: readonly string[],
  timeoutMs = 120_000,
): Promise<InitializedDirs> {
  const missing = dirs.filter((dir) => !isPgliteDataDir(dir));
  const pristine = missing.find(isAbsentOrEmpty);
  if (pristine === undefined) {
    for (const dir of missing) await initializePgliteDataDir(dir, timeoutMs);
    return { initialized: missing, copied: [] };
  }
  await initializePgliteDataDir(pristine, timeoutMs);
  const initialized = [pristine];
  const copied: string[] = [];
  for (const dir of missing) {
    if (dir === pristine) continue;
    if (isAbsentOrEmpty(dir)) {
      copyDataDir(pristine, dir);
      copied.push(dir);
    } else {
      await initializePgliteDataDir(dir, timeoutMs);
      initialized.push(dir);
    }
  }
  return { initialized, copied };
}

function isAbsentOrEmpty(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

function copyDataDir(from: string, to: string): void {
  const staging = `${to}.copying-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    cpSync(from, staging, { recursive: true });
    syncTree(staging);
    rmSync(to, { recursive: true, force: true }); // absent or empty: checked by the caller
    renameSync(staging, to);
    syncDirectory(dirname(to));
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new HoopError(
      'INTERNAL',
      `copying the new embedded database to ${to} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
