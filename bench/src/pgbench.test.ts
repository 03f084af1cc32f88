import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientEnv, type Endpoint, parsePgbenchOutput, pgbenchArgs } from './pgbench.js';

/** Captured from `pgbench -S -c 8 -j 2 -T 2` (pgbench 15.20) on the dev machine. */
const PGBENCH_15 = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 52086
number of failed transactions: 0 (0.000%)
latency average = 0.305 ms
initial connection time = 21.466 ms
tps = 26205.104778 (without initial connection time)
`;

/** The summary format of pgbench 13 and older: two tps lines, the second one without connecting. */
const PGBENCH_13 = `transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 8
number of threads: 2
duration: 20 s
number of transactions actually processed: 400000
latency average = 0.400 ms
tps = 19950.123456 (including connections establishing)
tps = 20000.654321 (excluding connections establishing)
`;

describe('parsePgbenchOutput', () => {
  it('reads tps, latency and transactions from pgbench 15 output', () => {
    assert.deepEqual(parsePgbenchOutput(PGBENCH_15), {
      tps: 26205.104778,
      latencyMs: 0.305,
      transactions: 52086,
      connectionMs: undefined,
    });
  });

  it('takes the tps without connection time from the older two-line format', () => {
    assert.equal(parsePgbenchOutput(PGBENCH_13)?.tps, 20000.654321);
  });

  it('reads CRLF line endings', () => {
    assert.equal(parsePgbenchOutput(PGBENCH_15.replaceAll('\n', '\r\n'))?.tps, 26205.104778);
  });

  it('returns undefined when there is no tps line', () => {
    assert.equal(parsePgbenchOutput(''), undefined);
    assert.equal(parsePgbenchOutput(PGBENCH_15.replace(/^tps = .*$/m, '')), undefined);
    assert.equal(
      parsePgbenchOutput('tps = 19950.123456 (including connections establishing)\n'),
      undefined,
    );
  });

  it('leaves latency and transactions undefined when they are missing', () => {
    assert.deepEqual(parsePgbenchOutput('tps = 12 (without initial connection time)'), {
      tps: 12,
      latencyMs: undefined,
      transactions: undefined,
      connectionMs: undefined,
    });
  });

  it('reads tps and the average connection time of a -C run', () => {
    const output = PGBENCH_15.replace(
      'initial connection time = 21.466 ms',
      'average connection time = 6.639 ms',
    ).replace(
      'tps = 26205.104778 (without initial connection time)',
      'tps = 103.422692 (including reconnection times)',
    );
    assert.equal(parsePgbenchOutput(output)?.connectionMs, 6.639);
    assert.equal(parsePgbenchOutput(output)?.tps, 103.422692);
  });
});

describe('pgbenchArgs', () => {
  it('runs select-only without vacuum against the endpoint', () => {
    assert.deepEqual(
      pgbenchArgs({
        endpoint: { host: '127.0.0.1', port: 6543, user: 'postgres', database: 'hoop_bench' },
        clients: 8,
        threads: 2,
        durationS: 20,
      }),
      '-n -S -M simple -c 8 -j 2 -T 20 -h 127.0.0.1 -p 6543 -U postgres hoop_bench'.split(' '),
    );
  });

  it('adds -M, -C and the per-transaction log', () => {
    const args = pgbenchArgs({
      endpoint: { host: 'h', port: 1, user: 'u', database: 'd' },
      clients: 1,
      threads: 1,
      durationS: 2,
      mode: 'prepared',
      connectEach: true,
      logPrefix: '/tmp/x/run',
    });
    assert.deepEqual(args.slice(0, 7), [
      '-n',
      '-S',
      '-M',
      'prepared',
      '-C',
      '-l',
      '--log-prefix=/tmp/x/run',
    ]);
  });
});

describe('clientEnv', () => {
  const native = {
    host: '127.0.0.1',
    port: 15432,
    user: 'bench-raw',
    database: 'hoop_bench',
    password: 'hoop_token',
  };

  it('passes a password as PGPASSWORD, never on argv', () => {
    const env = { PATH: '/bin', PGSSLMODE: 'disable' };
    assert.deepEqual(clientEnv(env, native), { ...env, PGPASSWORD: 'hoop_token' });
    assert.deepEqual(env, { PATH: '/bin', PGSSLMODE: 'disable' });
    const args = pgbenchArgs({ endpoint: native, clients: 1, threads: 1, durationS: 2 });
    assert.ok(!args.some((a) => a.includes('hoop_token')));
    assert.deepEqual(args.slice(-7), '-h 127.0.0.1 -p 15432 -U bench-raw hoop_bench'.split(' '));
  });

  it('leaves the environment alone for a trust path', () => {
    const env = { PATH: '/bin' };
    const direct: Endpoint = { host: 'h', port: 1, user: 'u', database: 'd' };
    assert.equal(clientEnv(env, direct), env);
  });
});
