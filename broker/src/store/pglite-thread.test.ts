import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EmbeddedStoreError, PgliteThread } from './pglite-thread.js';

describe('PgliteThread (the embedded store on its own thread)', () => {
  let db: PgliteThread;
  before(async () => {
    db = await PgliteThread.open(undefined);
    await db.query('create table t (id int primary key, note text)');
  });
  after(() => db.close());

  it('returns a failed statement as the driver error, SQLSTATE kept, and keeps working', async () => {
    await db.query('insert into t values (1, $1)', ['one']);
    await assert.rejects(db.query('insert into t values (1, $1)', ['again']), (err: unknown) => {
      assert.ok(err instanceof EmbeddedStoreError);
      assert.equal(err.code, '23505');
      assert.equal(err.constraint, 't_pkey');
      return true;
    });
    await assert.rejects(db.query('select * from nowhere'), { code: '42P01' });
    const { rows } = await db.query('select note from t where id = 1', [], { rowMode: 'object' });
    assert.deepEqual(rows, [{ note: 'one' }]);
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await db.transaction(async (tx) => {
      await tx.query('insert into t values (2, $1)', ['two']);
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('insert into t values (3, $1)', ['three']);
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    const { rows } = await db.query('select id from t order by id', [], { rowMode: 'array' });
    assert.deepEqual(rows, [[1], [2]]);
  });

  it('queries outside a transaction wait for it to end', async () => {
    let inside = false;
    const order: string[] = [];
    const tx = db.transaction(async (t) => {
      inside = true;
      await t.query('insert into t values (4, $1)', ['four']);
      await new Promise((r) => setTimeout(r, 50));
      order.push('commit');
    });
    while (!inside) await new Promise((r) => setImmediate(r));
    const outside = db
      .query('select count(*)::int as n from t', [], { rowMode: 'object' })
      .then((r) => {
        order.push('outside');
        return r.rows;
      });
    await tx;
    assert.deepEqual(await outside, [{ n: 3 }]);
    assert.deepEqual(order, ['commit', 'outside']);
  });

  it('parses base types and arrays of them (its parser table is trimmed to those)', async () => {
    const { rows } = await db.query(
      `select 7::int4 as i, 9007199254740::int8 as big, 1.5::float8 as f, true as b,
              '{"a":[1,"x"]}'::jsonb as j, array['a','b,c']::text[] as texts,
              array[1,2]::int4[] as ints, '2026-11-26T01:02:03Z'::timestamptz as at,
              'abc'::bytea as raw, '1.5'::numeric as n`,
      [],
      { rowMode: 'object' },
    );
    const row = rows[0] as Record<string, unknown>;
    assert.equal(row['i'], 7);
    assert.equal(row['f'], 1.5);
    assert.equal(row['b'], true);
    assert.deepEqual(row['j'], { a: [1, 'x'] });
    assert.deepEqual(row['texts'], ['a', 'b,c']);
    assert.deepEqual(row['ints'], [1, 2]);
    assert.equal((row['at'] as Date).toISOString(), '2026-11-26T01:02:03.000Z');
    assert.ok(row['raw'] instanceof Uint8Array);
    assert.equal(row['n'], '1.5');
    assert.equal(String(row['big']), '9007199254740');
  });

  it('refuses a custom result parser it cannot run on the other thread', async () => {
    await assert.rejects(
      db.query('select 1', [], { parsers: { 23: (v: string) => Number(v) * 2 } }),
      /cannot run a custom parser for type 23/,
    );
  });

  it('says it is closed instead of hanging', async () => {
    const other = await PgliteThread.open(undefined);
    await other.close();
    assert.equal(other.closed, true);
    await assert.rejects(other.query('select 1'), /the embedded store is closed/);
  });
});
