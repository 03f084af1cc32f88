import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { derivedMaskedUse } from './masked-refs.js';
import { loadSqlParser, type SqlParse } from './sql.js';

const masked = [{ table: 'customers', column: 'email' }];

describe('derivedMaskedUse', () => {
  let parse: SqlParse;
  before(async () => {
    parse = await loadSqlParser();
  });
  const use = (sql: string) => derivedMaskedUse(parse(sql).stmts?.[0]?.stmt, masked);

  it('allows plain columns, stars and non-returned uses (origins survive subqueries and CTEs)', () => {
    for (const sql of [
      'select email from customers',
      'select c.email as e, name from customers c',
      'select * from customers',
      'select c.* from customers c',
      'select e from (select email as e from customers) s',
      'with x as (select email from customers) select email from x',
      "select name from customers where lower(email) like '%@x.org' order by email",
      'select lower(email) from other_table',
      'update customers set email = lower(email) where id = 1',
    ]) {
      assert.equal(use(sql), undefined, sql);
    }
  });

  it('denies masked columns inside returned expressions, whole rows, and derived copies', () => {
    for (const sql of [
      'select lower(email) from customers',
      'select reverse(c.email) from customers c',
      "select encode(convert_to(email, 'UTF8'), 'base64') from customers",
      "select email::text || '' from customers",
      'select (select email from customers limit 1) as e',
      'select row_to_json(c) from customers c',
      'select json_agg(customers) from customers',
      'select c from customers c',
      'insert into t select upper(email) from customers',
      'delete from customers where id = 1 returning lower(email)',
      'with x as (select md5(email) as h from customers) select h from x',
    ]) {
      assert.ok(use(sql) !== undefined, sql);
    }
  });
});
