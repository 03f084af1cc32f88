import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectGrowth, type GrowthLimits } from './growth.js';
import { parseVmRss, sampleAll, sampleProcess } from './sampling.js';

const STATUS = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1151072 kB
VmRSS:\t   81234 kB
RssAnon:\t   40000 kB
Threads:\t11
`;

describe('parseVmRss', () => {
  it('reads VmRSS in KiB', () => {
    assert.equal(parseVmRss(STATUS), 81234);
    assert.equal(parseVmRss(STATUS.replaceAll('\n', '\r\n')), 81234);
  });
  it('is undefined without the line (kernel threads, zombies)', () => {
    assert.equal(parseVmRss('Name:\tkthreadd\nState:\tS\n'), undefined);
  });
});

describe('sampleProcess', () => {
  it('reads RSS and counts fds under a /proc root', async () => {
    const root = await mkdtemp(join(tmpdir(), 'proc-test-'));
    try {
      await mkdir(join(root, '42', 'fd'), { recursive: true });
      await writeFile(join(root, '42', 'status'), STATUS);
      for (const fd of ['0', '1', '2', '17']) await writeFile(join(root, '42', 'fd', fd), '');
      assert.deepEqual(await sampleProcess(42, root), { rssKiB: 81234, fds: 4 });
      assert.equal(await sampleProcess(43, root), undefined);
      assert.deepEqual(await sampleAll({ broker: 42, gone: 43 }, root), {
        broker: { rssKiB: 81234, fds: 4 },
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('samples this very process on Linux', async (t) => {
    if (process.platform !== 'linux') return t.skip('no /proc');
    const sample = await sampleProcess(process.pid);
    assert.ok(sample !== undefined && sample.rssKiB > 1000 && sample.fds >= 3);
  });
});

describe('detectGrowth', () => {
  const limits: GrowthLimits = {
    warmupFraction: 0.2,
    windowFraction: 0.2,
    maxAbsolute: 10,
    maxRatio: 0.1,
  };

  it('passes a flat series with noise and a warm-up ramp', () => {
    const series = [10, 40, 80, 100, 101, 99, 100, 102, 98, 100, 101, 100, 99, 100, 103];
    const g = detectGrowth(series, limits);
    assert.equal(g?.sustained, false);
    assert.ok(g !== undefined && g.first >= 99 && g.first <= 102);
  });

  it('fails a steady climb', () => {
    const series = Array.from({ length: 60 }, (_, i) => 100 + i * 2);
    const g = detectGrowth(series, limits);
    assert.equal(g?.sustained, true);
    assert.ok((g?.growth ?? 0) > 50);
  });

  it('passes one late spike that went away', () => {
    const series = [...Array.from({ length: 18 }, () => 100), 300, 100];
    assert.equal(detectGrowth(series, limits)?.sustained, false);
  });

  it('needs both the absolute and the relative limit exceeded', () => {
    const small = Array.from({ length: 20 }, (_, i) => 1000 + i); // +~15: > 10 but < 10 %
    assert.equal(detectGrowth(small, limits)?.sustained, false);
    const tiny = Array.from({ length: 20 }, (_, i) => 10 + i * 0.5); // +60 % but < 10 absolute
    assert.equal(detectGrowth(tiny, limits)?.sustained, false);
  });

  it('needs enough samples', () => {
    assert.equal(detectGrowth([1, 2, 3], limits), undefined);
  });
});
