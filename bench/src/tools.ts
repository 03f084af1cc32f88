/**
 * System tools the comparison paths need (pgbouncer, sshd, ssh), installed at run time with
 * apt-get when missing and the bench runs as root. Never throws for "cannot install": the
 * caller skips that path and prints the reason.
 */

import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { type Env, run } from './processes.js';

const INSTALL_TIMEOUT_MS = 5 * 60_000;
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

export interface Tool {
  /** Program name, looked up on PATH and the system sbin/bin directories. */
  readonly binary: string;
  /** Debian package that provides it. */
  readonly aptPackage: string;
}

export type ToolCheck =
  | {
      readonly ok: true;
      readonly paths: Readonly<Record<string, string>>;
      readonly installed: string[];
    }
  | { readonly ok: false; readonly reason: string };

/** Absolute path of `binary`, or undefined. */
export function findBinary(binary: string, env: Env): string | undefined {
  const dirs = [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const path = join(dir, binary);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Finds every tool, installing the missing ones' packages with apt-get when possible. */
export async function ensureTools(
  tools: readonly Tool[],
  env: Env,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<ToolCheck> {
  const missing = tools.filter((t) => findBinary(t.binary, env) === undefined);
  const installed: string[] = [];
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => t.aptPackage))];
    const names = missing.map((t) => t.binary).join(', ');
    if (process.getuid?.() !== 0) {
      return {
        ok: false,
        reason: `${names} not found, and not root to apt-get install ${packages.join(' ')}`,
      };
    }
    if (findBinary('apt-get', env) === undefined) {
      return {
        ok: false,
        reason: `${names} not found, and no apt-get to install ${packages.join(' ')}`,
      };
    }
    log(`bench: installing ${packages.join(' ')} (apt-get)…`);
    const aptEnv: Env = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
        env: aptEnv,
        timeoutMs: INSTALL_TIMEOUT_MS,
        signal,
      });
    let result = await install();
    if (result.code !== 0) {
      // Fresh containers often have no package lists yet.
      await run('apt-get', ['update', '-q'], {
        env: aptEnv,
        timeoutMs: INSTALL_TIMEOUT_MS,
        signal,
      });
      result = await install();
    }
    if (result.code !== 0) {
      const why = result.stderr.trim().split('\n').slice(-2).join(' ');
      return { ok: false, reason: `apt-get install ${packages.join(' ')} failed: ${why}` };
    }
    installed.push(...packages);
  }
  const paths: Record<string, string> = {};
  for (const tool of tools) {
    const path = findBinary(tool.binary, env);
    if (path === undefined)
      return { ok: false, reason: `${tool.binary} still not found after install` };
    paths[tool.binary] = path;
  }
  return { ok: true, paths, installed };
}

/**
 * A port that was free a moment ago on 127.0.0.1, for programs that cannot listen on port 0
 * themselves (pgbouncer, sshd, ssh -L). Another process could take it in between; the caller's
 * readiness check would then fail with a clear error.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
