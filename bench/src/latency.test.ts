import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  bucketOf,
  LatencyHistogram,
  readPgbenchLogs,
  recordLogLine,
  upperEdge,
} from './latency.js';

describe('LatencyHistogram', () => {
  it('is exact for small values', () => {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 50; us++) h.record(us);
    assert.equal(h.count, 50);
    assert.equal(h.percentile(50), 25);
    assert.equal(h.percentile(99), 50);
    assert.equal(h.percentile(100), 50);
  });

  it('stays within 1/64 of the true percentile for large values', () => {
    const h = new LatencyHistogram();
    const values = Array.from({ length: 10_000 }, (_, i) => 100 + i * 37);
    for (const v of values) h.record(v);
    for (const p of [50, 90, 99]) {
      const exact = values[Math.ceil((p / 100) * values.length) - 1] as number;
      const got = h.percentile(p);
      assert.ok(got >= exact && got <= exact * (1 + 1 / 64), `p${p}: ${got} vs ${exact}`);
    }
  });

  it('buckets are contiguous and ordered', () => {
    let previous = -1;
    for (let us = 0; us < 200_000; us += 7) {
      const bucket = bucketOf(us);
      assert.ok(upperEdge(bucket) >= us, `${us} above its bucket edge`);
      assert.ok(bucket >= previous);
      previous = bucket;
    }
  });

  it('is NaN when empty, and clamps to the largest value seen', () => {
    const h = new LatencyHistogram();
    assert.ok(Number.isNaN(h.percentile(50)));
    h.record(1000);
    assert.equal(h.percentile(99), 1000);
  });
});

describe('recordLogLine', () => {
  it('reads pgbench 15 lines, counts failures, ignores junk', () => {
    const h = new LatencyHistogram();
    assert.equal(recordLogLine(h, '0 1 2758 0 1795637253 694459'), true);
    assert.equal(recordLogLine(h, '1 7 85 0 1795637253 692589 0 0\r'), true);
    assert.equal(recordLogLine(h, '3 9 failed 0 1795637253 692589'), true);
    assert.equal(recordLogLine(h, ''), false);
    assert.equal(recordLogLine(h, 'garbage'), false);
    assert.equal(recordLogLine(h, '0 1 -5 0 1 2'), false);
    assert.equal(h.count, 2);
    assert.equal(h.failed, 1);
    assert.equal(h.percentile(100), 2758);
  });
});

describe('readPgbenchLogs', () => {
  it('reads every file of the prefix, main and per thread, and removes them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latency-test-'));
    try {
      await writeFile(join(dir, 'run.123'), '0 1 10 0 1 1\n0 2 30 0 1 2\n');
      await writeFile(join(dir, 'run.123.1'), '1 1 20 0 1 1\n');
      await writeFile(join(dir, 'other.123'), '0 1 999999 0 1 1\n');
      const h = await readPgbenchLogs(join(dir, 'run'));
      assert.equal(h.count, 3);
      assert.equal(h.percentile(50), 20);
      assert.deepEqual(await readdir(dir), ['other.123']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
