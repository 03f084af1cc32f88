import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { collectGarbage, inspectorUrl } from './inspector.js';

/**
 * A node process with its inspector on a free loopback port that holds ~40 MB of garbage in its
 * main thread and ~40 MB in a worker thread.
 */
async function withGarbageProcess(body: (url: string) => Promise<void>): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--inspect=127.0.0.1:0',
      '-e',
      // Garbage that stays until a full collection: old-space, unreferenced once built.
      [
        "const { Worker } = require('node:worker_threads');",
        'const garbage = "let keep = []; for (let i = 0; i < 400; i++) keep.push(new Array(12_500).fill(i)); keep = null; setInterval(() => {}, 1000);";',
        'new Worker(garbage, { eval: true });',
        'eval(garbage);',
      ].join(' '),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  try {
    let url: string | undefined;
    for (let i = 0; i < 100 && url === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      url = inspectorUrl(stderr);
    }
    assert.ok(url, `no inspector address in: ${stderr}`);
    await body(url);
  } finally {
    child.kill();
    await once(child, 'close');
  }
}

describe('collectGarbage', () => {
  it('finds the inspector address in stderr', () => {
    const line =
      'Debugger listening on ws://127.0.0.1:40123/5c2b6a8e-1d2f-4f4e-9c1b-2f7f2f5d9a10\nFor help, see: https://nodejs.org/en/docs/inspector\n';
    assert.equal(inspectorUrl(line), 'ws://127.0.0.1:40123/5c2b6a8e-1d2f-4f4e-9c1b-2f7f2f5d9a10');
    assert.equal(inspectorUrl('nothing here'), undefined);
  });

  it("frees another process's garbage and reports its live heap", async () => {
    await withGarbageProcess(async (url) => {
      // Let the worker start and build its garbage.
      await new Promise((r) => setTimeout(r, 1_000));
      const { usedBytes, workers } = await collectGarbage(url);
      assert.equal(workers, 1);
      // ~80 MB were allocated; after a full collection a bare node and worker hold a few MB.
      assert.ok(usedBytes > 0 && usedBytes < 20e6, `heap in use after GC: ${usedBytes}`);
    });
  });

  it('rejects, not hangs, when nothing listens', async () => {
    await assert.rejects(collectGarbage('ws://127.0.0.1:1/nothing', 5_000));
  });
});
