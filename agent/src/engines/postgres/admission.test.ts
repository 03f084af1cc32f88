/**
 * The broker's admission (EngineSession.admitted) against the machine's PostgreSQL: the engine
 * logs in to the target while the broker stores the session, but the client hears nothing and
 * runs nothing until the session is admitted; a session that is never admitted runs nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoopError } from '@hoop/shared';
import pg from 'pg';
import { PostgresEngine } from './engine.js';
import { connectThrough, type EngineServer, pgTarget, startEngineServer } from './test-harness.js';

const SYSTEM = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' } as const;

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
  refuse(err: Error): void;
}

function gate(): Gate {
  let open!: () => void;
  let refuse!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    refuse = reject;
  });
  promise.catch(() => {});
  return { promise, open, refuse };
}

/** Backends of the target with this application_name (seen by a direct connection). */
async function backends(watcher: pg.Client, app: string): Promise<number> {
  const { rows } = await watcher.query<{ n: number }>(
    'select count(*)::int as n from pg_stat_activity where application_name = $1',
    [app],
  );
  return rows[0]?.n ?? 0;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('PostgresEngine: admission by the broker', () => {
  const engine = new PostgresEngine();
  const gates: Gate[] = [];
  let server: EngineServer;
  let watcher: pg.Client;

  before(async () => {
    server = await startEngineServer({
      engine,
      target: pgTarget(SYSTEM),
      password: undefined,
      admitted: (index) => {
        gates[index] ??= gate();
        return gates[index].promise;
      },
    });
    watcher = new pg.Client({ ...SYSTEM });
    await watcher.connect();
  });
  after(async () => {
    await watcher.end();
    await server.close();
    await engine.close();
  });

  it('logs in to the target before admission, and lets the client in only once admitted', async () => {
    gates[0] = gate();
    const app = `hoop-admit-${process.pid}-a`;
    let connected = false;
    const connecting = connectThrough(server.port, { applicationName: app }).then((c) => {
      connected = true;
      return c;
    });
    // The target's backend exists (the engine logged in with the client's startup)…
    await until(async () => (await backends(watcher, app)) === 1, 'the target login');
    await sleep(200);
    // …but the client has not heard AuthenticationOk.
    assert.equal(connected, false, 'the client got in before the session was admitted');
    gates[0].open();
    const { client } = await connecting;
    const { rows } = await client.query('select 40 + 2 as n');
    assert.equal(rows[0].n, 42);
    await client.end();
    assert.deepEqual(await server.outcome(0), { ok: true });
  });

  it('runs nothing of a session that is not admitted, and tells the client why', async () => {
    gates[1] = gate();
    const app = `hoop-admit-${process.pid}-b`;
    const failing = connectThrough(server.port, { applicationName: app }).then(
      () => assert.fail('the client got in'),
      (err: Error) => err,
    );
    await until(async () => (await backends(watcher, app)) === 1, 'the target login');
    gates[1].refuse(
      new HoopError('INTERNAL', 'the broker could not record this session, so it was closed'),
    );
    const err = await failing;
    assert.match(err.message, /could not record this session/);
    const outcome = await server.outcome(1);
    assert.equal(outcome.ok, false);
    // The target's connection is gone with the session.
    await until(async () => (await backends(watcher, app)) === 0, 'the target backend to end');
  });

  it('tells the client why the target refused its login only once the session is admitted', async () => {
    // The broker takes a stream that ends before the session is admitted for a session that
    // never opened, and would drop the target's error; a psql user must see it (FATAL).
    const held = gate();
    const refusing = await startEngineServer({
      engine,
      target: pgTarget({ ...SYSTEM, database: 'hoop_admission_no_such_database' }),
      password: undefined,
      admitted: () => held.promise,
    });
    try {
      let told = false;
      const failing = connectThrough(refusing.port).then(
        () => assert.fail('the client got in'),
        (err: Error) => {
          told = true;
          return err;
        },
      );
      await sleep(300);
      assert.equal(told, false, 'the client heard from the target before admission');
      held.open();
      const err = await failing;
      assert.match(err.message, /database "hoop_admission_no_such_database" does not exist/);
      assert.equal((await refusing.outcome(0)).ok, false);
    } finally {
      await refusing.close();
    }
  });
});
