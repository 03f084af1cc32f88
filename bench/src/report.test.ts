import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDocument, jsonLine } from './processes.js';
import { type BenchResults, median, pathResult, renderReport } from './report.js';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});

describe('renderReport', () => {
  const results: BenchResults = {
    date: '2025-01-01T00:00:00.000Z',
    workload: { command: 'pgbench', durationS: 10, rounds: 2, clients: 8, threads: 2, scale: 10 },
    machine: { cpus: 2, cpuModel: 'cpu', node: 'v20', platform: 'linux', totalMemMiB: 1024 },
    postgres: { version: '15', address: '127.0.0.1:5432' },
    paths: {
      direct: pathResult([
        { tps: 20000, latencyMs: 0.4 },
        { tps: 22000, latencyMs: 0.36 },
      ]),
      hoop: pathResult([
        { tps: 8000, latencyMs: 1 },
        { tps: 8800, latencyMs: undefined },
      ]),
    },
    ratios: { hoop: 0.4 },
    rssKiB: { broker: [102400, 104448], agent: [81920, null], connect: [61440, 61440] },
  };

  it('prints medians, runs, ratios and RSS as markdown', () => {
    const text = renderReport(results);
    assert.match(text, /^\| direct \| 21,000 \| 20,000 · 22,000 \| 0\.380 ms \| 1\.00× \|$/m);
    assert.match(text, /^\| hoop \| 8,400 \| 8,000 · 8,800 \| 1\.000 ms \| 0\.40× \|$/m);
    assert.match(text, /^hoop\/direct: 0\.40×$/m);
    assert.match(text, /^\| broker \| 100\.0 MiB \| 102\.0 MiB \|$/m);
    assert.match(text, /^\| agent \| 80\.0 MiB \| n\/a \|$/m);
  });
});

describe('readiness matchers', () => {
  it('jsonDocument waits for a complete document', () => {
    assert.equal(jsonDocument('{\n  "url": "http://127.0.0.1:1"'), undefined);
    assert.deepEqual(jsonDocument('{\n  "url": "x"\n}\n'), { url: 'x' });
  });

  it('jsonLine finds the first accepted line', () => {
    const connected = jsonLine<{ state: string }>((e) => e.state === 'connected');
    assert.equal(connected('{"state":"connecting"}\n{"state":"conn'), undefined);
    assert.deepEqual(connected('{"state":"connecting"}\n{"state":"connected"}\n'), {
      state: 'connected',
    });
  });
});
