/**
 * The one-call query path against a real (in-memory) PGlite: the same results as PGlite's own
 * query() for the store's kinds of values, errors with their SQLSTATE and a session still usable
 * after them, and inside a transaction.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PGlite, protocol } from '@electric-sql/pglite';
import {
  extendedQuery,
  type OneRoundOptions,
  queryInOneRound,
  textParams,
} from './pglite-one-round.js';

describe('textParams', () => {
  it('sends nulls, strings, finite numbers, bigints and booleans as text', () => {
    assert.deepEqual(textParams([null, undefined, 'a', 42, 1.5, 9007199254740993n, true, false]), [
      null,
      null,
      'a',
      '42',
      '1.5',
      '9007199254740993',
      't',
      'f',
    ]);
    assert.deepEqual(textParams(undefined), []);
  });

  it('leaves to PGlite a value that needs a serializer', () => {
    for (const value of [new Date(), [1, 2], { a: 1 }, new Uint8Array([1]), Number.NaN]) {
      assert.equal(textParams(['x', value]), undefined, String(value));
    }
  });
});

describe('extendedQuery', () => {
  const theirs = (sql: string, values: (string | null)[]) => {
    const { serialize } = protocol;
    return Buffer.concat([
      serialize.parse({ text: sql }),
      serialize.bind({ values }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.sync(),
    ]);
  };

  it("writes the bytes PGlite's own serializer writes", () => {
    const cases: [string, (string | null)[]][] = [
      ['select 1', []],
      ['select $1::text, $2, $3', ['a', null, '']],
      ['insert into t values ($1, $2)', ['zoë — 日本 🚀', 'x'.repeat(300_000)]],
      ['select $1 -- ünïcode in the text too', [null]],
    ];
    for (const [sql, values] of cases) {
      assert.deepEqual(extendedQuery(sql, values), theirs(sql, values), sql);
    }
  });
});

describe('queryInOneRound (in-memory PGlite)', () => {
  let db: PGlite;
  const arrays = { rowMode: 'array' } as const;
  const objects = { rowMode: 'object' } as const;

  before(async () => {
    db = await PGlite.create();
    await db.exec(`create table t (
      id text primary key, n int, big bigint, ok boolean, at timestamptz, doc jsonb, price numeric
    )`);
  });
  after(async () => {
    await db.close();
  });

  const run = (sql: string, params: unknown[], options: OneRoundOptions = objects, inTx = false) =>
    queryInOneRound(db, sql, textParams(params) ?? assert.fail('not text'), options, inTx);

  it('gives what PGlite query() gives, rows as objects or arrays', async () => {
    const params = ['a', 7, '12345678901234', true, '2026-12-07T19:00:00.000Z', '["x",1]', '3.25'];
    const inserted = await run(
      'insert into t values ($1, $2, $3, $4, $5, $6, $7) returning *',
      params,
    );
    const select = 'select * from t where id = $1';
    for (const options of [objects, arrays]) {
      const mine = await run(select, ['a'], options);
      const theirs = await db.query(select, ['a'], options);
      assert.deepEqual(mine.rows, theirs.rows);
      assert.deepEqual(mine.fields, theirs.fields);
    }
    assert.equal(inserted.affectedRows, 1);
    const [row] = inserted.rows as Record<string, unknown>[];
    assert.equal(row?.['n'], 7);
    assert.equal(row?.['ok'], true);
    assert.deepEqual(row?.['doc'], ['x', 1]);
    assert.ok(row?.['at'] instanceof Date);
    const nulls = await run('select $1::text as a, $2::int as b', [null, undefined]);
    assert.deepEqual(nulls.rows, [{ a: null, b: null }]);
  });

  it('counts the rows of insert, update and delete, and none of a select', async () => {
    await run("insert into t (id) values ('b'), ('c')", []);
    assert.equal((await run('update t set n = $1 where id <> $2', [1, 'a'])).affectedRows, 2);
    assert.equal((await run('delete from t where n = $1', [1])).affectedRows, 2);
    assert.equal((await run('select 1', [])).affectedRows, 0);
  });

  it('rejects with the SQLSTATE and leaves the session usable', async () => {
    await assert.rejects(run('insert into t (id) values ($1)', ['a']), { code: '23505' });
    await assert.rejects(run('select $1::int', ['not a number']), { code: '22P02' });
    await assert.rejects(run('select * from no_such_table', []), { code: '42P01' });
    assert.deepEqual((await run('select $1::int + 1 as n', [41])).rows, [{ n: 42 }]);
  });

  it('runs inside a transaction that PGlite holds, and rolls back with it', async () => {
    await db
      .transaction(async (tx) => {
        await run("insert into t (id) values ('in-tx')", [], objects, true);
        const seen = await run(
          'select count(*)::int as n from t where id = $1',
          ['in-tx'],
          objects,
          true,
        );
        assert.deepEqual(seen.rows, [{ n: 1 }]);
        await tx.rollback();
      })
      .catch(() => {});
    assert.deepEqual(
      (await run('select count(*)::int as n from t where id = $1', ['in-tx'])).rows,
      [{ n: 0 }],
    );
  });

  it('applies the caller parsers before PGlite', async () => {
    const keepText = { rowMode: 'object', parsers: { 1184: (v: string) => v } } as const;
    const { rows } = await run("select '2026-12-07 19:00:00+00'::timestamptz as at", [], keepText);
    assert.equal(typeof (rows[0] as { at: unknown }).at, 'string');
  });
});
