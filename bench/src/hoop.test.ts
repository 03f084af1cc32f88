import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchError } from './errors.js';
import { launcherFlags } from './hoop.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repoRoot, 'cli', 'bin', 'hoop.js');

describe('launcherFlags', () => {
  it('reads the flags of the real launcher, which runs through its shebang with them', async () => {
    const flags = await launcherFlags(cli);
    assert.ok(flags.includes('--initial-old-space-size=64'), flags.join(' '));
    // Executed as a user's shell does (no `node` in front): env -S must accept the line.
    const { stdout } = await promisify(execFile)(cli, ['--version'], { timeout: 30_000 });
    assert.match(stdout, /^\d+\.\d+\.\d+/);
  });

  it('refuses a launcher without an `env -S node` shebang', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoop-bench-launcher-'));
    try {
      const file = join(dir, 'hoop.js');
      await writeFile(file, '#!/usr/bin/env node\nconsole.log(1);\n');
      await assert.rejects(launcherFlags(file), BenchError);
      await writeFile(file, '#!/usr/bin/env -S node --x=1 $(rm -rf /)\n');
      await assert.rejects(launcherFlags(file), BenchError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
