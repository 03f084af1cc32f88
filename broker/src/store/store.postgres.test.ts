/**
 * The Store suite on a real PostgreSQL server (HOOP_TEST_POSTGRES_URL, default the local trust
 * server at postgres://postgres@127.0.0.1:5432/postgres). Each run creates its own databases and
 * drops them afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeClock, HoopError } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type Database, defaultMigrationsFolder, openDatabase, redactUrl } from './database.js';
import { Store } from './store.js';
import { runStoreSuite } from './store.suite.js';

const adminUrl =
  process.env['HOOP_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
const created: string[] = [];

async function createDatabase(): Promise<string> {
  const name = `hoop_store_test_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`create database "${name}"`);
  created.push(name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

before(async () => {
  try {
    await admin`select 1`;
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${redactUrl(adminUrl)} (set HOOP_TEST_POSTGRES_URL): ${String(err)}`,
    );
  }
});

after(async () => {
  for (const name of created) {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
  }
  await admin.end({ timeout: 5 });
});

runStoreSuite('PostgreSQL', {
  open: async () => openDatabase({ databaseUrl: await createDatabase() }),
});

describe('PostgreSQL migrations', () => {
  it('migrate once when several brokers start at the same time', async () => {
    const url = await createDatabase();
    const opened: Database[] = await Promise.all(
      [1, 2, 3].map(() => openDatabase({ databaseUrl: url })),
    );
    try {
      assert.ok(opened.every((d) => d.kind === 'postgres'));
      const rows = await opened[0]!.db.execute<{ n: number }>(
        sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
      );
      const journal = JSON.parse(
        readFileSync(join(defaultMigrationsFolder(), 'meta', '_journal.json'), 'utf8'),
      ) as { entries: unknown[] };
      const [count] = rows as unknown as { n: number }[];
      assert.equal(count?.n, journal.entries.length);
      // and every one of them can bootstrap, exactly one creating the admin
      const clock = new FakeClock();
      const results = await Promise.all(
        opened.map((d) => new Store(d, randomBytes(32), clock).bootstrap()),
      );
      assert.equal(results.filter((r) => r.created).length, 1);
    } finally {
      await Promise.all(opened.map((d) => d.close()));
    }
    // reopening finds nothing to do
    const again = await openDatabase({ databaseUrl: url });
    await again.close();
  });

  it('reports an unreachable server without the password', async () => {
    const err = await openDatabase({
      databaseUrl: 'postgres://hoop:hunter2-secret@127.0.0.1:1/hoop',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof HoopError);
    assert.equal(err.code, 'INTERNAL');
    assert.match(err.message, /127\.0\.0\.1:1/);
    assert.ok(!err.message.includes('hunter2'), err.message);
  });
});
