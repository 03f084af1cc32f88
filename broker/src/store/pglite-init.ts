/**
 * Creates a fresh PGlite data directory in a short-lived child process. Running initdb inside
 * PGlite grows its WebAssembly memory to ~800 MB, and WebAssembly memory never shrinks: doing it
 * in the long-lived broker would keep that forever. Reopening the initialised directory in the
 * broker costs ~250 MB instead.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HoopError } from '@hoop/shared';
import { syncTree } from './pglite-durable-fs.js';

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
      ['--input-type=module', '-e', script, url, dir],
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
