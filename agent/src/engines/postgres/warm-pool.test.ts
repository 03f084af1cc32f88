/**
 * Warm target connections against the machine's PostgreSQL (127.0.0.1:5432, trust, database
 * test): what the target itself reports in pg_stat_activity is the evidence — which backend
 * served a session, that a spare ran nothing before it, and when spares are gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock, silentLogger } from '@hoop/shared';
import pg from 'pg';
import { PostgresEngine } from './engine.js';
import type { LoggedInTarget } from './login.js';
import { connectThrough, pgTarget, startEngineServer } from './test-harness.js';
import { WarmPool, type WarmSpec, warmKey, warmTargetKey } from './warm-pool.js';

const SYSTEM = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' } as const;

interface Backend {
  pid: number;
  state: string | null;
  query: string;
}

/** Backends with `app` as application_name, seen from a direct connection. */
async function backends(app: string): Promise<Backend[]> {
  const client = new pg.Client({ ...SYSTEM, application_name: 'warm-pool-observer' });
  await client.connect();
  try {
    const { rows } = await client.query<Backend>(
      'select pid, state, query from pg_stat_activity where application_name = $1 order by pid',
      [app],
    );
    return rows;
  } finally {
    await client.end();
  }
}

/** Polls `check` (bounded: 100 tries, 50 ms apart) until it returns a value. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function backendPid(port: number, app: string): Promise<number> {
  const { client } = await connectThrough(port, { applicationName: app });
  try {
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    return (rows[0] as { pid: number }).pid;
  } finally {
    await client.end();
  }
}

/**
 * The one idle backend of `app` that ran nothing: the spare. A backend still starting is listed
 * too, with no state yet; the spare is the one that finished its login and waits.
 */
function spareOf(app: string): Promise<Backend> {
  return eventually(`a logged-in, idle warm connection for ${app}`, async () => {
    const list = await backends(app);
    const only = list.length === 1 ? list[0] : undefined;
    return only?.query === '' && only.state === 'idle' ? only : undefined;
  });
}

async function withEngine(
  options: ConstructorParameters<typeof PostgresEngine>[0],
  body: (engine: PostgresEngine, port: number) => Promise<void>,
): Promise<void> {
  const engine = new PostgresEngine(options);
  const server = await startEngineServer({
    engine,
    target: pgTarget(SYSTEM),
    password: undefined,
  });
  try {
    await body(engine, server.port);
  } finally {
    await server.close();
    await engine.close();
  }
}

describe('warm target connections (local PostgreSQL)', () => {
  it('serve the next session from a backend that logged in earlier and ran nothing', async () => {
    const app = `hoop-warm-${process.pid}-a`;
    await withEngine({ warmConnections: 1 }, async (engine, port) => {
      const first = await backendPid(port, app);
      const spare = await spareOf(app);
      assert.notEqual(spare.pid, first);
      assert.equal(engine.warmConnections, 1);

      assert.equal(await backendPid(port, app), spare.pid, 'the session ran on the spare');
      const next = await spareOf(app);
      assert.notEqual(next.pid, spare.pid, 'a claimed spare is replaced, never given twice');
    });
    await eventually('the spares to close with the engine', async () =>
      (await backends(app)).length === 0 ? true : undefined,
    );
  });

  it('never give a spare to a session with other client parameters', async () => {
    const a = `hoop-warm-${process.pid}-b1`;
    const b = `hoop-warm-${process.pid}-b2`;
    await withEngine({ warmConnections: 1 }, async (_engine, port) => {
      await backendPid(port, a);
      const spareA = await spareOf(a);
      const pidB = await backendPid(port, b);
      assert.notEqual(pidB, spareA.pid);
      assert.equal((await spareOf(a)).pid, spareA.pid, "a's spare is still there");
    });
  });

  it('give each of many parallel sessions its own backend', async () => {
    const app = `hoop-warm-${process.pid}-c`;
    await withEngine({ warmConnections: 2 }, async (_engine, port) => {
      await backendPid(port, app);
      await eventually('two spares', async () =>
        (await backends(app)).length === 2 ? true : undefined,
      );
      const clients = await Promise.all(
        Array.from({ length: 6 }, () => connectThrough(port, { applicationName: app })),
      );
      try {
        const pids = await Promise.all(
          clients.map(async ({ client }) => {
            const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
            return (rows[0] as { pid: number }).pid;
          }),
        );
        assert.equal(new Set(pids).size, 6, `distinct backends: ${pids.join(', ')}`);
      } finally {
        await Promise.all(clients.map(({ client }) => client.end()));
      }
    });
  });

  it('drop a spare the target terminates; the next session connects as usual', async () => {
    const app = `hoop-warm-${process.pid}-d`;
    await withEngine({ warmConnections: 1 }, async (engine, port) => {
      await backendPid(port, app);
      const spare = await spareOf(app);
      const admin = new pg.Client({ ...SYSTEM });
      await admin.connect();
      try {
        await admin.query('select pg_terminate_backend($1)', [spare.pid]);
      } finally {
        await admin.end();
      }
      await eventually('the pool to notice', async () =>
        engine.warmConnections === 0 ? true : undefined,
      );
      const pid = await backendPid(port, app);
      assert.notEqual(pid, spare.pid);
      await spareOf(app);
    });
  });

  it('close spares that idle past warmIdleMs', async () => {
    const app = `hoop-warm-${process.pid}-e`;
    await withEngine({ warmConnections: 1, warmIdleMs: 300 }, async (engine, port) => {
      await backendPid(port, app);
      await eventually('the idle spare to close', async () =>
        (await backends(app)).length === 0 && engine.warmConnections === 0 ? true : undefined,
      );
    });
  });

  it('are off by default', async () => {
    const app = `hoop-warm-${process.pid}-f`;
    await withEngine({}, async (engine, port) => {
      await backendPid(port, app);
      await sleep(200);
      assert.equal(engine.warmConnections, 0);
      assert.deepEqual(await backends(app), []);
    });
  });

  it('refuse an out-of-range setting', () => {
    assert.throws(() => new PostgresEngine({ warmConnections: 17 }), { code: 'USAGE' });
    assert.throws(() => new PostgresEngine({ warmConnections: -1 }), { code: 'USAGE' });
  });
});

describe('warm pool keys', () => {
  const spec: WarmSpec = {
    target: { host: 'db', port: 5432, tls: 'prefer', user: 'app', database: 'shop' },
    password: 'pw-secret-1',
    parameters: [
      ['user', 'app'],
      ['database', 'shop'],
      ['application_name', 'psql'],
    ],
  };

  it('differ by credential, target and every parameter, and never hold the password', () => {
    const key = warmKey(spec);
    assert.ok(!key.includes('pw-secret-1'));
    assert.notEqual(warmKey({ ...spec, password: 'pw-secret-2' }), key);
    assert.notEqual(warmKey({ ...spec, target: { ...spec.target, port: 5433 } }), key);
    assert.notEqual(
      warmKey({ ...spec, parameters: [...spec.parameters, ['client_encoding', 'UTF8']] }),
      key,
    );
    assert.equal(warmKey({ ...spec, parameters: [...spec.parameters] }), key);
    assert.ok(key.startsWith(`${warmTargetKey(spec)}:`));
  });

  it('a failing refill is not retried until the idle time has passed', async () => {
    const clock = new FakeClock(1_000);
    let opens = 0;
    const pool = new WarmPool(
      { perKey: 1, maxTotal: 4, idleMs: 30_000, clock, logger: silentLogger },
      async () => {
        opens++;
        throw new Error('target refused');
      },
    );
    pool.refill(spec);
    assert.equal(opens, 1);
    assert.ok(pool.mayHave(warmTargetKey(spec)));
    const claimed: LoggedInTarget | undefined = await pool.claim(
      spec,
      new AbortController().signal,
    );
    assert.equal(claimed, undefined, 'a claimed refill that fails gives the session nothing');
    assert.equal(pool.size, 0);
    pool.refill(spec);
    assert.equal(opens, 1, 'quiet after a failure');
    clock.advance(30_000);
    pool.refill(spec);
    assert.equal(opens, 2);
    await sleep(0);
    pool.close();
    pool.refill(spec);
    assert.equal(opens, 2, 'a closed pool opens nothing');
  });
});
