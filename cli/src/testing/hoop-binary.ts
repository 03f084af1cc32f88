/** Test support: the real `hoop` binary as a child process (so its stdout is its own). */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const HOOP_BIN = fileURLToPath(new URL('../../bin/hoop.js', import.meta.url));

/** Runs `hoop` to its exit (30 s at most) with only PATH and `env` in its environment. */
export function runHoop(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [HOOP_BIN, ...argv],
      { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

/** Starts `hoop` and resolves with its exit; `state.out` and `state.err` grow as it writes. */
export function startHoop(argv: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [HOOP_BIN, ...argv], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
  });
  const state = { out: '', err: '' };
  child.stdout.on('data', (c: Buffer) => {
    state.out += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    state.err += c.toString('utf8');
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return { child, state, exited };
}
