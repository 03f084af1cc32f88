/** The Store suite on embedded PGlite, plus what only a data directory can show: persistence. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FakeClock, HoopError } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import { openDatabase } from './database.js';
import { loadMasterKey } from './secrets.js';
import { Store } from './store.js';
import { runStoreSuite } from './store.suite.js';

const root = mkdtempSync(join(tmpdir(), 'hoop-store-pglite-'));
after(() => rmSync(root, { recursive: true, force: true }));

runStoreSuite('PGlite', { open: () => openDatabase({ dataDir: join(root, 'suite') }) });

describe('PGlite data directory', () => {
  it('keeps data across close and reopen, and migrates only once', async () => {
    const dataDir = join(root, 'persist');
    const masterKey = loadMasterKey({ dataDir });
    const clock = new FakeClock(Date.UTC(2025, 5, 1));

    const first = await openDatabase({ dataDir });
    assert.equal(first.kind, 'pglite');
    const store = new Store(first, masterKey, clock);
    const { adminToken } = await store.bootstrap();
    await store.createAgent('edge');
    await store.createConnection({
      name: 'pg',
      agent: 'edge',
      type: 'postgres',
      host: 'localhost',
      port: 5432,
      user: 'postgres',
      database: 'postgres',
      password: 'kept-across-restarts',
    });
    const open = await store.createSession({ connectionId: null, connectionName: 'pg' });
    const migrations = await countMigrations(first);
    await first.close();
    await first.close(); // idempotent

    const second = await openDatabase({ dataDir });
    try {
      assert.equal(await countMigrations(second), migrations, 'reopen applied migrations again');
      // the key file is reused, so the stored password still decrypts
      const reopened = new Store(second, loadMasterKey({ dataDir }), clock);
      assert.deepEqual(await reopened.bootstrap(), { created: false });
      assert.equal((await reopened.authenticateUserToken(adminToken!))?.name, 'admin');
      assert.deepEqual(
        (await reopened.listAgents()).map((a) => a.name),
        ['edge'],
      );
      const { target } = await reopened.resolveConnectionTarget('pg');
      assert.deepEqual(target.credential, { kind: 'password', value: 'kept-across-restarts' });
      assert.equal(await reopened.failOpenSessions(), 1);
      assert.equal((await reopened.getSession(open.id)).errorCode, 'BROKER_RESTARTED');
    } finally {
      await second.close();
    }
  });

  it('runs in memory when no data directory is given', async () => {
    const database = await openDatabase({});
    try {
      const store = new Store(
        database,
        loadMasterKey({ dataDir: join(root, 'mem-key') }),
        new FakeClock(),
      );
      assert.equal((await store.bootstrap()).created, true);
    } finally {
      await database.close();
    }
  });

  it('starts with small shared buffers and statistics target, on disk and in memory', async () => {
    for (const options of [{ dataDir: join(root, 'settings') }, {}]) {
      const database = await openDatabase(options);
      try {
        const result = await database.db.execute<Settings>(
          sql`select current_setting('shared_buffers') as buffers,
                     current_setting('default_statistics_target') as target`,
        );
        const rows = (result as unknown as { rows: Settings[] }).rows;
        assert.deepEqual(
          rows.map((r) => [r.buffers, r.target]),
          [['8MB', '10']],
        );
      } finally {
        await database.close();
      }
    }
  });

  it('says so when the migrations folder is missing', async () => {
    await assert.rejects(
      openDatabase({ dataDir: join(root, 'nomig'), migrationsFolder: join(root, 'absent') }),
      (err: unknown) =>
        err instanceof HoopError &&
        err.code === 'INTERNAL' &&
        /migrations are missing/.test(err.message),
    );
  });
});

type Settings = { readonly buffers: string; readonly target: string };

async function countMigrations(
  database: Awaited<ReturnType<typeof openDatabase>>,
): Promise<number> {
  const rows = await database.db.execute<{ n: number }>(
    sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
  );
  const list = Array.isArray(rows) ? rows : (rows as unknown as { rows: { n: number }[] }).rows;
  return Number(list[0]?.n);
}
