/**
 * The Store suite on a real PostgreSQL server (HOOP_TEST_POSTGRES_URL, default the local trust
 * server at postgres://postgres@127.0.0.1:5432/postgres). Each run creates its own databases and
 * drops them afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeClock, HoopError } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type Database, defaultMigrationsFolder, openDatabase, redactUrl } from './database.js';
import { MAX_PREPARED_PARAMS } from './named-statements.js';
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

/**
 * A TCP relay in front of PostgreSQL that counts the frontend messages by type ('P' Parse,
 * 'H' Flush, 'S' Sync, …): a query sent in two round trips (Parse + Describe + Flush, wait, then
 * Bind + Execute + Sync) shows a Flush; one sent in one round trip does not.
 */
async function startWireTap(target: URL): Promise<{
  url(database: string): string;
  counts: Map<string, number>;
  close(): Promise<void>;
}> {
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    let started = false;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const header = started ? 5 : 4;
        if (pending.length < header) break;
        const length = pending.readInt32BE(started ? 1 : 0) + (started ? 1 : 0);
        if (pending.length < length) break;
        if (started) {
          const type = String.fromCharCode(pending[0]!);
          counts.set(type, (counts.get(type) ?? 0) + 1);
        }
        started = true;
        pending = pending.subarray(length);
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url(database) {
      const url = new URL(target.toString());
      url.host = `127.0.0.1:${port}`;
      url.pathname = `/${database}`;
      return url.toString();
    },
    counts,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('PostgreSQL named statements', () => {
  /** Opens the store through a wire tap and creates `rows` sessions; the tap's counts after. */
  async function createSessionsThroughTap(
    prepare: boolean,
    rows: number,
  ): Promise<Map<string, number>> {
    const database = new URL(await createDatabase()).pathname.slice(1);
    const tap = await startWireTap(new URL(adminUrl));
    const opened = await openDatabase({
      databaseUrl: tap.url(database),
      prepare,
      maxConnections: 1,
    });
    try {
      const store = new Store(opened, randomBytes(32), new FakeClock());
      // the first run of a query with parameters describes it first, prepared or not
      await store.createSession({ connectionId: null, connectionName: 'warm-up' });
      await store.listSessions({ limit: 1 });
      tap.counts.clear();
      for (let i = 0; i < rows; i += 1) {
        const info = await store.createSession({ connectionId: null, connectionName: `db-${i}` });
        assert.equal(info.connectionName, `db-${i}`);
      }
      const listed = await store.listSessions({ limit: rows + 1 });
      assert.equal(listed.length, rows + 1);
      return new Map(tap.counts);
    } finally {
      await opened.close();
      await tap.close();
    }
  }

  it('send a repeated query in one round trip, parsed once per connection', async () => {
    const counts = await createSessionsThroughTap(true, 5);
    assert.equal(
      counts.get('H') ?? 0,
      0,
      `no Flush (no describe-first round trip): ${[...counts]}`,
    );
    assert.equal(counts.get('P') ?? 0, 0, 'parsed during the warm-up only');
    assert.equal(counts.get('E'), 6);
  });

  it('describe first, in two round trips, with HOOP_DATABASE_PREPARE=off', async () => {
    const counts = await createSessionsThroughTap(false, 5);
    assert.equal(counts.get('H'), 6, 'a describe round trip for each query');
    assert.equal(counts.get('P'), 6);
    assert.equal(counts.get('E'), 6);
  });

  it('prepare a query with at most MAX_PREPARED_PARAMS parameters, and no larger one', async () => {
    const opened = await openDatabase({ databaseUrl: await createDatabase(), maxConnections: 1 });
    try {
      const sumOf = async (count: number): Promise<number> => {
        const terms = Array.from({ length: count }, (_, i) => sql`${i}::int`);
        const rows = (await opened.db.execute(
          sql`select ${sql.join(terms, sql` + `)} as total`,
        )) as unknown as { total: number }[];
        return Number(rows[0]?.total);
      };
      assert.equal(
        await sumOf(MAX_PREPARED_PARAMS),
        (MAX_PREPARED_PARAMS * (MAX_PREPARED_PARAMS - 1)) / 2,
      );
      const over = MAX_PREPARED_PARAMS + 1;
      assert.equal(await sumOf(over), (over * (over - 1)) / 2);
      const rows = (await opened.db.execute(
        sql`select statement from pg_prepared_statements where not from_sql`,
      )) as unknown as { statement: string }[];
      const counts = rows.map((r) => (r.statement.match(/::int/g) ?? []).length);
      assert.ok(counts.includes(MAX_PREPARED_PARAMS), `prepared: ${counts}`);
      assert.ok(!counts.includes(over), `prepared: ${counts}`);
    } finally {
      await opened.close();
    }
  });
});
