import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalysisCache, literalShape, maskedKeyOf } from './analysis-cache.js';
import { Guardrails } from './guardrails.js';
import { examplePolicy } from './policy-test-kit.js';
import { analyzeSql, loadSqlParser, type SqlParse } from './sql.js';

describe('literalShape', () => {
  it('replaces stand-alone integers and decimals by their lexical class', () => {
    assert.equal(
      literalShape('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;'),
      'SELECT abalance FROM pgbench_accounts WHERE aid = 0;',
    );
    assert.equal(literalShape('select 1.5, -3, 7 limit 10'), 'select 0.0, -0, 0 limit 0');
    assert.equal(
      literalShape('select x from t where a in (1,2,3)'),
      'select x from t where a in (0,0,0)',
    );
  });

  it('keeps numbers that are not plain ICONST/FCONST tokens', () => {
    // Ten digits may be an FCONST to PostgreSQL's lexer; exponents, hex, underscores, a trailing
    // or leading dot are other token shapes: all kept verbatim.
    for (const sql of [
      'select 1234567890',
      'select 1e5',
      'select 0x1f',
      'select 1_000',
      'select 1.',
      'select .5',
      'select 1.5e3',
    ]) {
      assert.equal(literalShape(sql), sql, sql);
    }
  });

  it('never touches digits inside identifiers', () => {
    assert.equal(
      literalShape('select t1.c2 from t1 join t22 on true'),
      'select t1.c2 from t1 join t22 on true',
    );
    assert.equal(literalShape('select é1 from t'), 'select é1 from t');
  });

  it('keeps the exact text when it holds strings, quoted names, parameters or comments', () => {
    for (const sql of [
      "select 1 from t where a = '2'",
      'select 1 from "t3"',
      'select $1 + 2',
      'select 1 -- 2',
      'select 1 /* 2 */',
      'select $$3$$',
      "select E'\\x41', 5",
    ]) {
      assert.equal(literalShape(sql), sql, sql);
    }
  });
});

describe('AnalysisCache', () => {
  const masked = [{ table: 'pgbench_accounts', column: 'filler' }];

  it('analyses a literal variant once and returns the same facts', async () => {
    const parse = await loadSqlParser();
    let parses = 0;
    const counting: SqlParse = (sql) => {
      parses++;
      return parse(sql);
    };
    const cache = new AnalysisCache({ maxEntries: 10, maxTextChars: 1000 });
    const key = maskedKeyOf(masked);
    const a = cache.analyze(
      counting,
      'SELECT abalance FROM pgbench_accounts WHERE aid = 1',
      masked,
      key,
    );
    const b = cache.analyze(
      counting,
      'SELECT abalance FROM pgbench_accounts WHERE aid = 99',
      masked,
      key,
    );
    assert.equal(parses, 1);
    assert.equal(b, a);
    assert.deepEqual(
      a,
      analyzeSql(parse, 'SELECT abalance FROM pgbench_accounts WHERE aid = 99', masked),
    );
    assert.equal(cache.hits, 1);
    assert.equal(cache.misses, 1);
  });

  it('does not share facts between masking configurations', async () => {
    const parse = await loadSqlParser();
    const cache = new AnalysisCache({ maxEntries: 10, maxTextChars: 1000 });
    const sql = 'select lower(filler) from pgbench_accounts';
    const plain = cache.analyze(parse, sql, [], maskedKeyOf([]));
    const withMask = cache.analyze(parse, sql, masked, maskedKeyOf(masked));
    assert.equal(plain[0]?.derivedMaskedUse, undefined);
    assert.equal(withMask[0]?.derivedMaskedUse, 'pgbench_accounts.filler');
  });

  it('does not cache parse errors, and keeps at most maxEntries', async () => {
    const parse = await loadSqlParser();
    const cache = new AnalysisCache({ maxEntries: 3, maxTextChars: 1000 });
    assert.throws(() => cache.analyze(parse, 'selec 1', [], ''));
    assert.equal(cache.size, 0);
    for (const table of ['a', 'b', 'c', 'd', 'e'])
      cache.analyze(parse, `select * from ${table}`, [], '');
    assert.equal(cache.size, 3);
  });

  it('analyses long texts every time without keeping them', async () => {
    const parse = await loadSqlParser();
    const cache = new AnalysisCache({ maxEntries: 10, maxTextChars: 20 });
    cache.analyze(parse, 'select 1 from a_rather_long_table_name', [], '');
    assert.equal(cache.size, 0);
  });

  it('hands out frozen facts', async () => {
    const parse = await loadSqlParser();
    const cache = new AnalysisCache({ maxEntries: 10, maxTextChars: 1000 });
    const [facts] = cache.analyze(parse, 'delete from t', [], '');
    assert.ok(facts);
    assert.throws(() => {
      (facts as { deleteWithoutWhere: boolean }).deleteWithoutWhere = false;
    }, TypeError);
  });

  it('keeps guardrail verdicts exact across literal variants', async () => {
    const parse = await loadSqlParser();
    const g = new Guardrails(examplePolicy('public'), parse, new AnalysisCache());
    const none = new Set<string>();
    assert.equal(g.check('delete from t where id = 1', none).allowed, true);
    assert.equal(g.check('delete from t where id = 2', none).allowed, true);
    assert.equal(g.check('delete from t', none).allowed, false);
    // Same shape as an allowed statement, but a string literal: analysed on its own.
    const copy = g.check("copy t to program 'rm -rf 1'", none);
    assert.equal(copy.allowed, false);
  });
});
