import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDocument, jsonLine } from './processes.js';
import {
  type BenchResults,
  checkTargets,
  collectRatios,
  median,
  type PgbenchCell,
  renderReport,
  type ScaleResult,
} from './report.js';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});

const cell = (path: PgbenchCell['path'], tps: number, r: number | null): PgbenchCell => ({
  mode: 'simple',
  clients: 8,
  path,
  tps: [tps, tps],
  medianTps: tps,
  p50Ms: 0.25,
  p99Ms: 1.5,
  ratio: r,
});

const measured = {
  pgbench: [
    cell('direct', 20000, 1),
    cell('hoop', 9000, 0.45),
    cell('hoop-native', 11000, 0.55),
    cell('hoop-policy', 8400, 0.42),
  ],
  connect: [
    {
      path: 'direct' as const,
      tps: [500],
      medianTps: 500,
      connectionMs: 1.5,
      overDirectMs: 0,
      ratio: 1,
    },
    {
      path: 'hoop' as const,
      tps: [200],
      medianTps: 200,
      connectionMs: 4.5,
      overDirectMs: 3,
      ratio: 0.4,
    },
    {
      path: 'hoop-warm' as const,
      tps: [450],
      medianTps: 450,
      connectionMs: 1.25,
      overDirectMs: -0.25,
      ratio: 0.9,
    },
    {
      path: 'hoop-native' as const,
      tps: [250],
      medianTps: 250,
      connectionMs: 3.5,
      overDirectMs: 2,
      ratio: 0.5,
    },
  ],
  copy: [
    { path: 'direct' as const, seconds: [1], bytes: 100e6, mbPerS: 100, ratio: 1 },
    { path: 'hoop' as const, seconds: [1.25], bytes: 100e6, mbPerS: 80, ratio: 0.8 },
    { path: 'hoop-native' as const, seconds: [1.1], bytes: 100e6, mbPerS: 90.9, ratio: 0.91 },
  ],
  scale: {
    store: 'embedded' as const,
    sessions: 1000,
    opened: 1000,
    openSeconds: 3,
    target: 'fake',
    idleSeconds: 12,
    processes: {
      broker: {
        before: { rssKiB: 102400, fds: 30 },
        justOpened: { rssKiB: 163840, fds: 1030 },
        idle: { rssKiB: 133120, fds: 1030 },
      },
    },
  },
};

describe('collectRatios and checkTargets', () => {
  it('keys every ratio but direct', () => {
    assert.deepEqual(collectRatios(measured), {
      'pgbench.simple.c8.hoop': 0.45,
      'pgbench.simple.c8.hoop-native': 0.55,
      'pgbench.simple.c8.hoop-policy': 0.42,
      'connect.hoop': 0.4,
      'connect.hoop-warm': 0.9,
      'connect.hoop-native': 0.5,
      'copy.hoop': 0.8,
      'copy.hoop-native': 0.91,
    });
  });

  it('checks the issue targets, n/a when not measured', () => {
    const withDirect = {
      ...measured,
      pgbench: [...measured.pgbench, cell('hoop-direct', 10400, 0.52)],
    };
    const byName = Object.fromEntries(checkTargets(withDirect).map((t) => [t.name, t]));
    assert.equal(byName['pgbench -S -c 8 (simple), hoop no policy']?.met, false);
    assert.equal(byName['pgbench -S -c 8 (simple), hoop all policies']?.met, true);
    assert.equal(byName['COPY out, hoop no policy']?.met, true);
    assert.equal(byName['connection setup, hoop, no policy']?.met, true);
    const warm = byName['connection setup, hoop, no policy, warm target connection'];
    assert.equal(warm?.actual, '-0.25 ms');
    assert.equal(warm?.met, true);
    assert.equal(byName['connection setup, hoop, all policies']?.met, null);
    // The agent's direct endpoint is checked against the same targets, on its own lines.
    assert.equal(
      byName["pgbench -S -c 8 (simple), hoop agent's direct endpoint, no policy"]?.met,
      true,
    );
    assert.equal(
      byName["pgbench -S -c 8 (simple), hoop agent's direct endpoint, all policies"]?.met,
      null,
    );
    assert.equal(byName['1000 idle sessions, broker RSS']?.actual, '136 MB');
    assert.equal(byName['1000 idle sessions, broker RSS']?.met, true);
  });
});

const scaleOnPostgres: ScaleResult = {
  store: 'postgres',
  sessions: 1000,
  opened: 1000,
  openSeconds: 3,
  target: 'fake',
  idleSeconds: 12,
  processes: {
    broker: { before: { rssKiB: 61440, fds: 30 }, idle: { rssKiB: 92160, fds: 31 } },
  },
};

describe('renderReport', () => {
  const results: BenchResults = {
    date: '2025-01-01T00:00:00.000Z',
    machine: { cpus: 2, cpuModel: 'cpu', node: 'v20', platform: 'linux', totalMemMiB: 1024 },
    postgres: { version: '15', address: '127.0.0.1:5432' },
    settings: {},
    paths: ['direct', 'hoop', 'hoop-native', 'hoop-policy'],
    skipped: [{ what: 'ssh -L path', reason: 'no sshd' }],
    ...measured,
    wan: {
      rttMs: 20,
      connect: [
        {
          path: 'direct',
          tps: [40],
          medianTps: 40,
          connectionMs: 41,
          overDirectMs: 0,
          ratio: 1,
        },
        {
          path: 'hoop',
          tps: [30],
          medianTps: 30,
          connectionMs: 30.5,
          overDirectMs: -10.5,
          ratio: 0.75,
        },
      ],
    },
    store: {
      rttMs: 20,
      connect: [
        { path: 'direct', tps: [50], medianTps: 50, connectionMs: 16, overDirectMs: 0, ratio: 1 },
        {
          path: 'hoop-strict',
          tps: [25],
          medianTps: 25,
          connectionMs: 40.25,
          overDirectMs: 24.25,
          ratio: 0.5,
        },
      ],
    },
    scaleOnPostgres,
    soak: {
      seconds: 60,
      collected: true,
      workload: 'pgbench -C',
      transactions: 1000,
      processes: {
        agent: {
          rssKiB: [],
          fds: [],
          rssGrowth: { first: 51200, last: 102400, growth: 51200, ratio: 1, sustained: true },
          fdsGrowth: { first: 20, last: 21, growth: 1, ratio: 0.05, sustained: false },
          afterGc: {
            start: { rssKiB: 40960, heapBytes: 8 * 1024 * 1024 },
            end: { rssKiB: 92160, heapBytes: 48 * 1024 * 1024 },
          },
        },
        connect: {
          rssKiB: [],
          fds: [],
          rssGrowth: { first: 51200, last: 81920, growth: 30720, ratio: 0.6, sustained: true },
          fdsGrowth: null,
          afterGc: null,
        },
      },
      failures: ['agent RSS after a full collection grew'],
    },
    ratios: collectRatios(measured),
    targets: checkTargets({ ...measured, scaleOnPostgres }),
  };

  it('adds a column against the three-relay floor when the relay path ran', () => {
    const withFloor = renderReport({
      ...results,
      pgbench: [...measured.pgbench, cell('relay', 10000, 0.5)],
    });
    assert.match(withFloor, /^\| mode \| clients \| .* \| vs direct \| vs 3 relays \|$/m);
    assert.match(
      withFloor,
      /^\| simple \| 8 \| hoop, no policy \| 9,000 \| .* \| 0\.45× \| 0\.90× \|$/m,
    );
    assert.match(withFloor, /^\| simple \| 8 \| 3 bare Node relays \| .* \| 0\.50× \| 1\.00× \|$/m);
    // Without it, the table keeps its columns.
    assert.doesNotMatch(renderReport(results), /vs 3 relays/);
  });

  it('prints tables, ratio lines, targets and what was skipped', () => {
    const text = renderReport(results);
    assert.match(
      text,
      /^\| simple \| 8 \| hoop, no policy \| 9,000 \| 9,000 · 9,000 \| 0\.250 ms \| 1\.500 ms \| 0\.45× \|$/m,
    );
    assert.match(text, /^\| hoop, no policy \| 200 \| 4\.50 ms \| \+3\.00 ms \| 0\.40× \|$/m);
    assert.match(text, /^\| hoop, no policy \| 80\.0 \| 1\.25 \| 0\.80× \|$/m);
    assert.match(
      text,
      /^\| simple \| 8 \| hoop native endpoint, no policy \| 11,000 \| 11,000 · 11,000 \| 0\.250 ms \| 1\.500 ms \| 0\.55× \|$/m,
    );
    assert.match(
      text,
      /^\| hoop native endpoint, no policy \| 250 \| 3\.50 ms \| \+2\.00 ms \| 0\.50× \|$/m,
    );
    assert.match(text, /^\| hoop native endpoint, no policy \| 90\.9 \| 1\.10 \| 0\.91× \|$/m);
    assert.match(text, /^pgbench\.simple\.c8\.hoop-native: 0\.55×$/m);
    // Rows in path order: hoop connect, then the native endpoint, then all policies.
    const rows = text.split('\n').filter((l) => l.startsWith('| simple | 8 |'));
    assert.deepEqual(
      rows.map((l) => l.split(' | ')[2]),
      ['direct', 'hoop, no policy', 'hoop native endpoint, no policy', 'hoop, all policies'],
    );
    assert.match(
      text,
      /^\| broker \| 100\.0 MiB \| 160\.0 MiB \| 130\.0 MiB \| 30\.7 KiB \| 30 \| 1030 \| n\/a \/ n\/a \|$/m,
    );
    assert.match(text, /^\| process \| RSS before \| RSS just opened \| RSS idle 12 s \|/m);
    // One scale table per store, and the RSS target for each.
    assert.match(
      text,
      /^## Scale: 1000\/1000 idle sessions .*\(broker on its embedded store; fake\)/m,
    );
    assert.match(
      text,
      /^## Scale: 1000\/1000 idle sessions .*\(broker on a PostgreSQL store; fake\)/m,
    );
    assert.match(
      text,
      /^\| broker \| 60\.0 MiB \| n\/a \| 90\.0 MiB \| 30\.7 KiB \| 30 \| 31 \| n\/a \/ n\/a \|$/m,
    );
    assert.match(
      text,
      /^- ✓ 1000 idle sessions, broker RSS \(PostgreSQL store\): 94 MB \(want ≤ 150 MB \(1,000 sessions\)\)$/m,
    );
    assert.match(
      text,
      /^\| agent \| 50\.0 MiB → 100\.0 MiB \| 40\.0 MiB → 90\.0 MiB \| 8\.0 MiB → 48\.0 MiB \| 20 → 21 \| \*\*growing\*\* \|$/m,
    );
    // The verdict follows the failures, not the RSS sampled under load.
    assert.match(text, /^\| connect \| 50\.0 MiB → 80\.0 MiB \| n\/a \| n\/a \| n\/a \| flat \|$/m);
    assert.match(text, /^soak: FAILED$/m);
    assert.match(text, /^pgbench\.simple\.c8\.hoop: 0\.45×$/m);
    assert.match(
      text,
      /^- ✗ pgbench -S -c 8 \(simple\), hoop no policy: 0\.45× \(want ≥ 0\.50× direct\)$/m,
    );
    assert.match(text, /^- ssh -L path: no sshd$/m);
    assert.match(
      text,
      /^## Connection setup over a slow link: .*, 20 ms round trip on the far leg$/m,
    );
    assert.match(
      text,
      /^\| hoop, no policy \| hoop connect ⇄ broker \| 30\.50 ms \| 1\.5 \| -10\.5 ms \|$/m,
    );
    assert.match(text, /^## Connection setup with the broker's store 20 ms away: /m);
    assert.match(text, /^\| hoop, no policy, strict admission \| 40\.25 ms \| \+24\.25 ms \|$/m);
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
