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
