/** The embedded store's autovacuum, on a real PGlite: dead tuples go, small tables are left alone. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { createLogger, FakeClock, HoopError, type Logger } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import { type Database, openDatabase } from './database.js';
import { maintenanceDue, quoteIdentifier, startStoreMaintenance } from './maintenance.js';
import { loadMasterKey } from './secrets.js';
import { Store } from './store.js';

const root = mkdtempSync(join(tmpdir(), 'hoop-maintenance-'));
let n = 0;
after(() => rmSync(root, { recursive: true, force: true }));

interface Stats {
  readonly n_live_tup: number;
  readonly n_dead_tup: number;
  readonly n_mod_since_analyze: number;
  readonly last_vacuum: unknown;
  readonly last_analyze: unknown;
}

async function tableStats(database: Database, table: string): Promise<Stats> {
  await database.db.execute(sql`select pg_stat_force_next_flush()`);
  const result = await database.db.execute(sql`
    select n_live_tup::int, n_dead_tup::int, n_mod_since_analyze::int, last_vacuum, last_analyze
    from pg_stat_user_tables where schemaname = 'public' and relname = ${table}`);
  const [row] = (result as unknown as { rows: Stats[] }).rows;
  assert.ok(row !== undefined, `no statistics for ${table}`);
  return row;
}

function capture(): { logger: Logger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (line) => lines.push(JSON.parse(line) as { level: string; msg: string }),
  });
  return { logger, lines };
}

describe('store maintenance (PGlite)', () => {
  it('decides like autovacuum: 50 + 20 % dead, 50 + 10 % changed', () => {
    assert.equal(maintenanceDue({ live: 1000, dead: 250, modifiedSinceAnalyze: 0 }), undefined);
    assert.equal(maintenanceDue({ live: 1000, dead: 251, modifiedSinceAnalyze: 0 }), 'vacuum');
    assert.equal(maintenanceDue({ live: 1000, dead: 0, modifiedSinceAnalyze: 150 }), undefined);
    assert.equal(maintenanceDue({ live: 1000, dead: 0, modifiedSinceAnalyze: 151 }), 'analyze');
    assert.equal(maintenanceDue({ live: 0, dead: 51, modifiedSinceAnalyze: 500 }), 'vacuum');
    assert.equal(quoteIdentifier('odd "name"'), '"odd ""name"""');
  });

  it('vacuums tables with dead tuples, analyzes changed ones, leaves small ones alone', async () => {
    const dataDir = join(root, `db${n++}`);
    const database = await openDatabase({ dataDir });
    const clock = new FakeClock(Date.UTC(2025, 5, 1));
    const { logger, lines } = capture();
    const maintenance = startStoreMaintenance({ database, clock, logger });
    try {
      const store = new Store(database, loadMasterKey({ dataDir }), clock);
      await store.bootstrap();
      // sessions: 300 opened and ended through the Store (each end leaves a dead tuple)
      const ids: string[] = [];
      for (let i = 0; i < 300; i++) {
        ids.push((await store.createSession({ connectionId: null, connectionName: 'pg' })).id);
      }
      await store.endSessions(
        ids.map((id) => ({ id, status: 'closed', bytesUp: 1, bytesDown: 2 })),
      );
      // agents: 200 inserted, none updated: due for ANALYZE only
      await database.db.execute(sql`
        insert into agents (id, name, token_hash, created_at)
        select 'a' || g, 'agent-' || g, 'hash-' || g, now() from generate_series(1, 200) g`);
      // a table whose name needs quoting, with dead tuples
      await database.db.execute(sql`create table "odd ""name""" (id int primary key, v int)`);
      await database.db.execute(
        sql`insert into "odd ""name""" select g, 0 from generate_series(1, 100) g`,
      );
      await database.db.execute(sql`update "odd ""name""" set v = 1`);
      // connections: a few changes, under both thresholds
      await store.createAgent('edge');
      for (let i = 0; i < 5; i++) {
        await store.createConnection({
          name: `pg${i}`,
          agent: 'edge',
          type: 'postgres',
          host: 'localhost',
          port: 5432,
          user: 'postgres',
          database: 'postgres',
        });
      }
      await database.db.execute(sql`update connections set port = 5433`);

      const sessionsBefore = await tableStats(database, 'sessions');
      assert.ok(sessionsBefore.n_dead_tup > 50 + 0.2 * 300, JSON.stringify(sessionsBefore));
      const connectionsBefore = await tableStats(database, 'connections');
      assert.equal(connectionsBefore.n_dead_tup, 5);

      const done = await maintenance.runOnce();
      assert.deepEqual(
        { vacuumed: [...done.vacuumed].sort(), analyzed: done.analyzed, failed: done.failed },
        { vacuumed: ['odd "name"', 'sessions'], analyzed: ['agents'], failed: [] },
      );

      const sessions = await tableStats(database, 'sessions');
      assert.equal(sessions.n_dead_tup, 0, JSON.stringify(sessions));
      assert.equal(sessions.n_live_tup, 300);
      assert.equal(sessions.n_mod_since_analyze, 0);
      assert.notEqual(sessions.last_vacuum, null);
      assert.notEqual(sessions.last_analyze, null);
      const odd = await tableStats(database, 'odd "name"');
      assert.equal(odd.n_dead_tup, 0);
      assert.notEqual(odd.last_vacuum, null);
      const agents = await tableStats(database, 'agents');
      assert.equal(agents.last_vacuum, null);
      assert.notEqual(agents.last_analyze, null);
      assert.equal(agents.n_mod_since_analyze, 0);
      const connections = await tableStats(database, 'connections');
      assert.equal(connections.last_vacuum, null);
      assert.equal(connections.last_analyze, null);
      assert.equal(connections.n_dead_tup, 5);

      assert.ok(
        lines.some((l) => l.level === 'debug' && l.msg === 'store maintenance: vacuumed table'),
        JSON.stringify(lines),
      );
      // nothing is due any more
      assert.deepEqual(await maintenance.runOnce(), { vacuumed: [], analyzed: [], failed: [] });
    } finally {
      maintenance.stop();
      await database.close();
    }
  });

  it('runs on the clock, and stop() cancels the timer', async () => {
    const database = await openDatabase({});
    const clock = new FakeClock();
    const maintenance = startStoreMaintenance({
      database,
      clock,
      logger: capture().logger,
      intervalMs: 1_000,
    });
    try {
      await database.db.execute(sql`
        insert into agents (id, name, token_hash, created_at)
        select 'a' || g, 'agent-' || g, 'hash-' || g, now() from generate_series(1, 100) g`);
      await database.db.execute(sql`update agents set last_seen_at = now()`);
      assert.equal(clock.pendingTimers(), 1);
      clock.advance(1_000);
      // the timer's run is in flight; runOnce() joins it instead of starting another
      assert.deepEqual((await maintenance.runOnce()).vacuumed, ['agents']);
      assert.equal((await tableStats(database, 'agents')).n_dead_tup, 0);
      for (let i = 0; i < 10 && clock.pendingTimers() === 0; i++) await tick();
      assert.equal(clock.pendingTimers(), 1, 'the next run is scheduled');
      maintenance.stop();
      assert.equal(clock.pendingTimers(), 0);
    } finally {
      maintenance.stop();
      await database.close();
    }
  });

  it('logs a warning when a run fails, and the timer survives', async () => {
    const clock = new FakeClock();
    const { logger, lines } = capture();
    const failing = { execute: () => Promise.reject(new Error('the store is closed')) };
    const database = { kind: 'pglite', db: failing } as unknown as Database;
    const maintenance = startStoreMaintenance({ database, clock, logger, intervalMs: 1_000 });
    try {
      clock.advance(1_000);
      await assert.rejects(
        maintenance.runOnce(),
        (err: unknown) => err instanceof HoopError && err.code === 'INTERNAL',
      );
      for (let i = 0; i < 10 && clock.pendingTimers() === 0; i++) await tick();
      assert.ok(
        lines.some((l) => l.level === 'warn' && l.msg === 'store maintenance failed'),
        JSON.stringify(lines),
      );
      assert.equal(clock.pendingTimers(), 1, 'the next run is scheduled');
    } finally {
      maintenance.stop();
    }
  });

  it('does nothing on PostgreSQL (it has autovacuum)', async () => {
    const clock = new FakeClock();
    const untouchable = new Proxy(
      {},
      {
        get: () => {
          throw new Error('the database was used');
        },
      },
    );
    const database = { kind: 'postgres', db: untouchable } as unknown as Database;
    const maintenance = startStoreMaintenance({ database, clock, logger: capture().logger });
    assert.equal(clock.pendingTimers(), 0);
    assert.deepEqual(await maintenance.runOnce(), { vacuumed: [], analyzed: [], failed: [] });
    maintenance.stop();
  });
});
