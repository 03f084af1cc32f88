import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchError } from './errors.js';
import { launcher } from './hoop.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repoRoot, 'cli', 'bin', 'hoop.js');

describe('launcher', () => {
  it('reads the environment and flags of the real launcher, which runs through its shebang with them', async () => {
    const { env, flags } = await launcher(cli);
    assert.ok(flags.includes('--initial-old-space-size=64'), flags.join(' '));
    assert.deepEqual(env, { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '262144' });
    // Executed as a user's shell does (no `node` in front): env -S must accept the line.
    const { stdout } = await promisify(execFile)(cli, ['--version'], { timeout: 30_000 });
    assert.match(stdout, /^\d+\.\d+\.\d+/);
  });

  it('refuses a launcher without an `env -S node` shebang', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoop-bench-launcher-'));
    try {
      const file = join(dir, 'hoop.js');
      await writeFile(file, '#!/usr/bin/env node\nconsole.log(1);\n');
      await assert.rejects(launcher(file), BenchError);
      await writeFile(file, '#!/usr/bin/env -S node --x=1 $(rm -rf /)\n');
      await assert.rejects(launcher(file), BenchError);
      await writeFile(file, '#!/usr/bin/env -S A=$(rm) node --x=1\n');
      await assert.rejects(launcher(file), BenchError);
      await writeFile(file, '#!/usr/bin/env -S A=1 B_2=x.y node --x=1 --y\n');
      assert.deepEqual(await launcher(file), {
        env: { A: '1', B_2: 'x.y' },
        flags: ['--x=1', '--y'],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
