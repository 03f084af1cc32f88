/**
 * `hoop … | head -1`: a reader that closes the pipe early ends the output, not the command with
 * a stack trace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { HOOP_BIN } from './testing/hoop-binary.js';

/** Runs `hoop argv` with its stdout a pipe whose reading end is closed at once. */
function runWithClosedStdout(argv: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOOP_BIN, ...argv], {
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, err });
    });
  });
}

describe('hoop with a closed stdout', () => {
  for (const argv of [['--help'], ['--version']]) {
    it(`hoop ${argv.join(' ')} exits 0 without an EPIPE trace`, async () => {
      const { code, err } = await runWithClosedStdout(argv);
      assert.equal(err, '');
      assert.equal(code, 0);
    });
  }
});
