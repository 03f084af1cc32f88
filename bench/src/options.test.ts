import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BenchError } from './errors.js';
import { DEFAULTS, parseOptions } from './options.js';

describe('parseOptions', () => {
  it('defaults', () => {
    const options = parseOptions([], {});
    assert.equal(options.durationS, DEFAULTS.durationS);
    assert.equal(options.rounds, DEFAULTS.rounds);
    assert.equal(options.clients, 8);
    assert.equal(options.threads, 2);
  });

  it('takes the environment, and flags over it', () => {
    const env = { HOOP_BENCH_DURATION: '5', HOOP_BENCH_ROUNDS: '4' };
    assert.equal(parseOptions([], env).durationS, 5);
    assert.equal(parseOptions([], env).rounds, 4);
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
