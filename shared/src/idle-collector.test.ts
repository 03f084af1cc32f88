import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { FakeClock } from './clock.js';
import {
  collectThroughInspector,
  IdleCollector,
  type IdleCollectorProbes,
  threadProbes,
} from './idle-collector.js';

const MiB = 1024 * 1024;

/** Probes whose loop and heap a test sets; `collect` brings the heap back to `after`. */
function fakeProbes(start: { utilization: number; heap: number; after: number }) {
  const state = { ...start, collections: 0, fail: false };
  const probes: IdleCollectorProbes = {
    utilization: () => state.utilization,
    heapBytes: () => state.heap,
    collect: async () => {
      if (state.fail) throw new Error('inspector not available');
      state.collections += 1;
      state.heap = state.after;
    },
  };
  return { state, probes };
}

describe('IdleCollector', () => {
  it('collects once an idle loop sits on a grown heap, then not again until it grows anew', async () => {
    const { state, probes } = fakeProbes({ utilization: 0.01, heap: 10 * MiB, after: 10 * MiB });
    const collector = new IdleCollector({ probes, growthBytes: 16 * MiB });
    assert.equal(await collector.check(), false, 'a heap under growthBytes is left alone');
    state.heap = 60 * MiB;
    state.after = 20 * MiB;
    assert.equal(await collector.check(), true);
    assert.equal(state.collections, 1);
    assert.equal(await collector.check(), false, 'back at the baseline');
    state.heap = 30 * MiB;
    assert.equal(await collector.check(), false, 'grown, but by less than growthBytes');
    state.heap = 37 * MiB;
    assert.equal(await collector.check(), true);
    assert.equal(collector.count, 2);
  });

  it('never pauses a busy loop, however much garbage there is', async () => {
    const { state, probes } = fakeProbes({ utilization: 0.4, heap: 20 * MiB, after: 20 * MiB });
    const collector = new IdleCollector({ probes });
    state.heap = 200 * MiB;
    for (let i = 0; i < 5; i++) assert.equal(await collector.check(), false);
    assert.equal(state.collections, 0);
    state.utilization = 0.02;
    assert.equal(await collector.check(), true);
  });

  it('gives back what starting up left behind at the first idle look', async () => {
    const { state, probes } = fakeProbes({ utilization: 0.01, heap: 40 * MiB, after: 15 * MiB });
    const collector = new IdleCollector({ probes, growthBytes: 16 * MiB });
    assert.equal(await collector.check(), true);
    assert.equal(state.heap, 15 * MiB);
    assert.equal(await collector.check(), false);
  });

  it('takes a heap V8 shrank on its own as the new reference', async () => {
    const { state, probes } = fakeProbes({ utilization: 0.01, heap: 60 * MiB, after: 50 * MiB });
    const collector = new IdleCollector({ probes, growthBytes: 16 * MiB });
    assert.equal(await collector.check(), true, 'the reference is now 50 MiB');
    state.heap = 20 * MiB;
    assert.equal(await collector.check(), false);
    state.heap = 38 * MiB;
    assert.equal(await collector.check(), true, 'grown 18 MiB over the shrunken 20');
  });

  it('runs on its timer and stops with stop()', async () => {
    const clock = new FakeClock();
    const { state, probes } = fakeProbes({ utilization: 0.01, heap: 10 * MiB, after: 10 * MiB });
    const collector = new IdleCollector({ probes, clock, intervalMs: 1000 }).start();
    state.heap = 50 * MiB;
    clock.advance(999);
    await Promise.resolve();
    assert.equal(state.collections, 0);
    clock.advance(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(state.collections, 1);
    collector.stop();
    state.heap = 90 * MiB;
    clock.advance(10_000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(state.collections, 1, 'stopped');
  });

  it('stops for good when collecting is impossible', async () => {
    const { state, probes } = fakeProbes({ utilization: 0.01, heap: 10 * MiB, after: 10 * MiB });
    const collector = new IdleCollector({ probes });
    state.fail = true;
    state.heap = 50 * MiB;
    assert.equal(await collector.check(), false);
    state.fail = false;
    assert.equal(await collector.check(), false, 'stopped after the failure');
    assert.equal(state.collections, 0);
  });

  it('refuses settings that cannot work', () => {
    const { probes } = fakeProbes({ utilization: 0, heap: 0, after: 0 });
    assert.throws(() => new IdleCollector({ probes, intervalMs: 0 }), RangeError);
    assert.throws(() => new IdleCollector({ probes, growthBytes: -1 }), RangeError);
    assert.throws(() => new IdleCollector({ probes, maxUtilization: 1 }), RangeError);
  });
});

describe('collection through the in-process inspector', () => {
  it('frees garbage and gives back the young generation V8 grew for it', async () => {
    let keep: unknown[] | undefined = [];
    for (let i = 0; i < 400_000; i++) keep.push({ i, text: `row ${i} ${'x'.repeat(40)}` });
    keep = undefined;
    const before = getHeapStatistics().total_heap_size;
    await collectThroughInspector();
    const after = getHeapStatistics().total_heap_size;
    assert.equal(keep, undefined);
    assert.ok(
      after < before - 20 * MiB,
      `heap ${Math.round(before / MiB)} → ${Math.round(after / MiB)} MiB`,
    );
  });

  it('on its own timer, with the real probes: collects once the loop goes idle after a burst', async () => {
    const logged: { heapBefore: number; heapAfter: number }[] = [];
    const logger = {
      debug: (msg: string, fields?: Record<string, unknown>) => {
        if (msg === 'idle collection')
          logged.push(fields as { heapBefore: number; heapAfter: number });
      },
      info: () => {},
      warn: () => {},
      error: () => {},
      child: () => logger,
    };
    const collector = new IdleCollector({ intervalMs: 200, logger });
    let keep: unknown[] | undefined = [];
    for (let i = 0; i < 400_000; i++) keep.push({ i, text: `row ${i} ${'x'.repeat(40)}` });
    keep = undefined;
    collector.start();
    try {
      for (let waited = 0; collector.count === 0 && waited < 5000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      collector.stop();
    }
    assert.equal(keep, undefined);
    assert.equal(collector.count, 1);
    const [entry] = logged;
    assert.ok(
      entry !== undefined && entry.heapAfter < entry.heapBefore - 20 * MiB,
      JSON.stringify(logged),
    );
  });

  it('the real probes see a busy loop as busy and an idle one as idle', async () => {
    const probes = threadProbes();
    probes.utilization();
    const until = performance.now() + 60;
    while (performance.now() < until) {
      // Busy on purpose: the loop is held for the whole interval.
    }
    assert.ok(probes.utilization() > 0.5);
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.ok(probes.utilization() < 0.3);
  });

  it('works inside a worker thread, on the worker’s own heap', async () => {
    const url = new URL('./idle-collector.js', import.meta.url).href;
    const source = `
      const { parentPort } = require('node:worker_threads');
      const { getHeapStatistics } = require('node:v8');
      import(${JSON.stringify(url)}).then(async ({ collectThroughInspector }) => {
        let keep = [];
        for (let i = 0; i < 400000; i++) keep.push({ i, text: 'row ' + i + ' ' + 'x'.repeat(40) });
        keep = undefined;
        const before = getHeapStatistics().total_heap_size;
        await collectThroughInspector();
        parentPort.postMessage({ before, after: getHeapStatistics().total_heap_size });
      });`;
    const worker = new Worker(source, { eval: true });
    const result = await new Promise<{ before: number; after: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.ok(
      result.after < result.before - 20 * MiB,
      `worker heap ${Math.round(result.before / MiB)} → ${Math.round(result.after / MiB)} MiB`,
    );
  });
});
