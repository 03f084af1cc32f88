import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BenchError } from './errors.js';
import { CASES, DEFAULTS, parseOptions, QUICK } from './options.js';

describe('parseOptions', () => {
  it('defaults', () => {
    const options = parseOptions([], {});
    assert.equal(options.durationS, DEFAULTS.durationS);
    assert.equal(options.rounds, DEFAULTS.rounds);
    assert.deepEqual(options.clients, [1, 8, 32]);
    assert.equal(options.soakS, 60);
    assert.equal(options.sessions, 1000);
    assert.equal(options.rttMs, 20);
    assert.deepEqual(options.only, CASES);
    assert.equal(parseOptions(['--rtt', '50'], {}).rttMs, 50);
  });

  it('--quick shortens everything, and explicit flags still win', () => {
    const quick = parseOptions(['--quick'], {});
    assert.equal(quick.durationS, QUICK.durationS);
    assert.equal(quick.soakS, QUICK.soakS);
    assert.equal(parseOptions(['--quick', '--soak', '30'], {}).soakS, 30);
  });

  it('--only selects cases, in the bench order', () => {
    assert.deepEqual(parseOptions(['--only', 'soak,pgbench'], {}).only, ['pgbench', 'soak']);
    assert.deepEqual(parseOptions(['--only=copy, scale'], {}).only, ['copy', 'scale']);
    assert.deepEqual(parseOptions(['--only', 'scale,wan'], {}).only, ['wan', 'scale']);
  });

  it('takes the environment, and flags over it', () => {
    const env = { HOOP_BENCH_DURATION: '5', HOOP_BENCH_ROUNDS: '4', HOOP_BENCH_SOAK: '20' };
    assert.equal(parseOptions([], env).durationS, 5);
    assert.equal(parseOptions([], env).rounds, 4);
    assert.equal(parseOptions([], env).soakS, 20);
    assert.equal(parseOptions(['--duration', '7', '--rounds=2'], env).durationS, 7);
    assert.equal(parseOptions(['--duration', '7', '--rounds=2'], env).rounds, 2);
    assert.equal(parseOptions([], { HOOP_BENCH_DURATION: ' ' }).durationS, DEFAULTS.durationS);
  });

  it('refuses bad values and unknown flags with USAGE', () => {
    for (const argv of [
      ['--duration', '0'],
      ['--duration', '1.5'],
      ['--duration', 'ten'],
      ['--rounds', '1'],
      ['--soak', '2'],
      ['--rtt', '1'],
      ['--rtt', '-5'],
      ['--only', 'ssh'],
      ['--only', ','],
      ['--clients', '3'],
      ['extra'],
    ]) {
      assert.throws(
        () => parseOptions(argv, {}),
        (err) => err instanceof BenchError && err.code === 'USAGE',
        argv.join(' '),
      );
    }
  });
});
