/**
 * Guardrails through the engine against the local PostgreSQL, driven by pg (simple and
 * extended protocol), postgres.js (pipelined) and raw protocol bytes, plus a bypass suite: each
 * attempt must be refused with 42501, leave the table untouched, and leave the session usable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import postgres from 'postgres';
import { PostgresEngine } from './engine.js';
import { Guardrails } from './guardrails.js';
import { BackendCode, ErrorField, FrontendCode } from './messages.js';
import {
  adminClient,
  auditLog,
  examplePolicy,
  LOCAL,
  rawSession,
  uniqueSchema,
} from './policy-test-kit.js';
import { encodeParse, encodeQuery } from './protocol.js';
import { parseErrorFields } from './reader.js';
import { loadSqlParser } from './sql.js';
import {
  assertFailed,
  connectError,
  connectThrough,
  type EngineServer,
  pgTarget,
  startEngineServer,
} from './test-harness.js';
import { encodeMessage } from './writer.js';

const schema = uniqueSchema('hoop_guard');
const T = `${schema}.t`;

describe('guardrails (unit, parse tree)', () => {
  it('classifies nested statements, functions and rules', async () => {
    const parse = await loadSqlParser();
    const g = new Guardrails(examplePolicy('public'), parse);
    const denied = (sql: string): string | undefined => {
      const v = g.check(sql, new Set());
      return v.allowed ? undefined : v.denial.rule;
    };
    assert.equal(denied('DrOp/**/TABLE x'), 'statements: drop');
    assert.equal(
      denied('with d as (delete from t returning *) select * from d'),
      'delete-without-where',
    );
    assert.equal(denied('explain analyze update t set a = 1'), 'update-without-where');
    assert.equal(denied("select PG_CATALOG.PG_READ_FILE('x')"), 'functions: pg_read_file');
    assert.equal(denied('revoke select on t from public'), 'statements: revoke');
    assert.equal(denied('grant select on t to public'), 'statements: grant');
    assert.equal(denied("copy t to program 'x'"), 'copy-program');
    assert.equal(denied('do $$ begin end $$'), 'dynamic-sql');
    assert.equal(denied('execute p'), 'dynamic-sql');
    assert.equal(denied('select from where'), 'parse-error');
    assert.equal(denied('copy (select * from customers) to stdout'), 'masking: copy');
    assert.equal(denied('copy t to stdout (format binary)'), 'masking: copy');
    assert.equal(denied('select 1; select 2'), undefined);
    assert.equal(denied('delete from t where id = 1'), undefined);
    assert.equal(denied('select email from customers'), undefined);
    const multi = new Guardrails({ guardrails: { deny: [{ rule: 'multi-statement' }] } }, parse);
    assert.equal(multi.check('select 1; select 2', new Set()).allowed, false);
    assert.equal(multi.check('select 1;', new Set()).allowed, true);
  });
});

describe('guardrails through the engine', () => {
  const engine = new PostgresEngine();
  const audit = auditLog();
  let server: EngineServer;
  let admin: pg.Client;
  let client: pg.Client;

  const count = async (): Promise<number> =>
    (await admin.query(`select count(*)::int as n from ${T}`)).rows[0].n;

  before(async () => {
    admin = await adminClient();
    await admin.query(`create schema ${schema}`);
    await admin.query(`create table ${T} (id int primary key, v text)`);
    await admin.query(`insert into ${T} select i, 'v' || i from generate_series(1, 10) i`);
    server = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      policy: examplePolicy(schema),
      audit: audit.sink,
    });
    ({ client } = await connectThrough(server.port));
  });
  after(async () => {
    await client?.end().catch(() => {});
    await server?.close();
    await engine.close();
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  });

  async function assertDenied(c: pg.Client, sql: string, values?: unknown[]): Promise<void> {
    await assert.rejects(
      values === undefined ? c.query(sql) : c.query(sql, values),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501', `${sql}: ${err.message}`);
        assert.match(err.message, /^hoop: statement denied by policy: .*\(rule .+\)$/);
        return true;
      },
      sql,
    );
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1, 'session still usable');
  }

  it('denies a DROP with a message naming the rule, and the table survives', async () => {
    await assert.rejects(client.query(`drop table ${T}`), {
      code: '42501',
      message:
        'hoop: statement denied by policy: drop statements are not allowed (rule statements: drop)',
    });
    assert.equal(await count(), 10);
    assert.ok(
      audit.events.some((e) => e.type === 'statement' && e.denied?.rule === 'statements: drop'),
    );
  });

  const bypasses = [
    `DrOp/**/TABLE ${T}`,
    `drop table "${schema}"."t"`,
    `  drop\n\ttable ${T} cascade`,
    `truncate ${T}`,
    `alter table ${T} add column x int`,
    `grant select on ${T} to public`,
    `revoke select on ${T} from public`,
    `delete from ${T}`,
    `update ${T} set v = 'x'`,
    `with d as (delete from ${T} returning *) select * from d`,
    `with u as (update ${T} set v = 'y' returning *) select count(*) from u`,
    `explain analyze delete from ${T}`,
    `select 1; drop table ${T}`,
    `select 1; delete from ${T}`,
    `PREPARE p AS DELETE FROM ${T}`,
    'EXECUTE p',
    `DO $$ begin execute 'drop table ${T}'; end $$`,
    `COPY ${T} TO PROGRAM 'cat > /dev/null'`,
    `copy ${T} from program 'echo 1'`,
    "select pg_catalog.pg_read_file('/etc/hostname')",
    "select PG_READ_FILE('/etc/hostname')",
    `select "pg_read_file"('/etc/hostname')`,
    "select * from (select pg_read_file('/etc/hostname')) q",
    "with x as (select pg_ls_dir('.')) select * from x",
    "select pg_read_file('/etc/hostname')::text",
    "select (select pg_read_file('/etc/hostname'))::varchar",
    `create table ${schema}.t2 (a text default pg_read_file('/etc/hostname'))`,
    "select lo_import('/etc/hostname')",
    "select dblink('dbname=test', 'select 1')",
    `select query_to_xml('with d as (delete from ${T} returning *) select * from d', true, false, '')`,
    `create function ${schema}.f() returns void language plpgsql as $$ begin delete from ${T}; end $$`,
    `create function ${schema}.g() returns void language sql as 'delete from ${T}'`,
    `create view ${schema}.v as select pg_read_file('/etc/hostname')`,
    'select from where nonsense',
  ];

  for (const sql of bypasses) {
    it(`denies (simple protocol): ${sql.replace(/\s+/g, ' ')}`, async () => {
      await assertDenied(client, sql);
      assert.equal(await count(), 10, 'no row touched');
    });
  }

  it('denies through the extended protocol (Parse) and the session goes on', async () => {
    await assertDenied(client, `update ${T} set v = $1`, ['x']);
    await assertDenied(client, `select pg_read_file($1)`, ['/etc/hostname']);
    await assertDenied(client, `select lo_export($1::oid, '/tmp/x')`, [1]);
    await assertDenied(
      client,
      `with d as (delete from ${T} returning *) select * from d where id = $1`,
      [1],
    );
    const { rows } = await client.query(`select v from ${T} where id = $1`, [3]);
    assert.equal(rows[0].v, 'v3');
    assert.equal(await count(), 10);
  });

  it('allows what the policy does not deny, including tracked PREPARE/EXECUTE', async () => {
    await client.query(`delete from ${T} where id = 10`);
    await client.query(`insert into ${T} values (10, 'v10')`);
    await client.query(`prepare q as select v from ${T} where id = $1`);
    const { rows } = await client.query('execute q(4)');
    assert.equal(rows[0].v, 'v4');
    await client.query('deallocate q');
    await assertDenied(client, 'execute q(4)');
  });

  it('a denial inside a transaction fails it like postgres: only ROLLBACK gets out', async () => {
    await client.query('begin');
    await client.query(`insert into ${T} values (100, 'in-tx')`);
    await assert.rejects(client.query(`drop table ${T}`), { code: '42501' });
    await assert.rejects(client.query('select 1'), { code: '25P02' });
    await client.query('rollback');
    assert.equal(await count(), 10);
    // COMMIT of the failed transaction rolls back.
    await client.query('begin');
    await client.query(`insert into ${T} values (101, 'in-tx')`);
    await assert.rejects(client.query(`truncate ${T}`), { code: '42501' });
    const commit = await client.query('commit');
    assert.equal(commit.command, 'ROLLBACK');
    assert.equal(await count(), 10);
    // Same with the extended protocol.
    await client.query('begin');
    await client.query(`insert into ${T} values ($1, 'in-tx')`, [102]);
    await assert.rejects(client.query(`update ${T} set v = $1`, ['z']), { code: '42501' });
    await assert.rejects(client.query('select $1::int', [1]), { code: '25P02' });
    await client.query('rollback');
    assert.equal(await count(), 10);
    assert.equal((await client.query('select 2 as two')).rows[0].two, 2);
  });

  it('raw extended protocol: a denied Parse swallows up to Sync and answers E + Z', async () => {
    const raw = await rawSession(server.port);
    raw.send(
      Buffer.concat([
        encodeParse('', `drop table ${T}`, []),
        encodeMessage(FrontendCode.bind, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])),
        encodeMessage(FrontendCode.execute, Buffer.from([0, 0, 0, 0, 0])),
        encodeMessage(FrontendCode.sync),
        encodeQuery('select 42'),
      ]),
    );
    const first = await raw.readUntil(BackendCode.readyForQuery);
    assert.deepEqual(
      first.map((m) => String.fromCharCode(m.code)),
      ['E', 'Z'],
    );
    assert.equal(parseErrorFields(first[0]?.body ?? Buffer.alloc(0)).get(ErrorField.code), '42501');
    const second = await raw.readUntil(BackendCode.readyForQuery);
    assert.deepEqual(
      second.map((m) => String.fromCharCode(m.code)),
      ['T', 'D', 'C', 'Z'],
    );
    raw.destroy();
    assert.equal(await count(), 10);
  });

  it('postgres.js with pipelined queries: the denied one fails, the others succeed', async () => {
    const sql = postgres({
      host: '127.0.0.1',
      port: server.port,
      user: 'x',
      database: 'y',
      max: 1,
      onnotice: () => {},
    });
    try {
      const results = await Promise.allSettled([
        sql`select 1 as a`,
        sql.unsafe(`drop table ${T}`),
        sql`select ${2}::int as b`,
        sql.unsafe(`delete from ${T}`),
        sql`select v from ${sql(schema)}.t where id = ${5}`,
      ]);
      assert.equal(results[0].status, 'fulfilled');
      assert.equal(results[1].status, 'rejected');
      assert.equal(results[2].status, 'fulfilled');
      assert.equal(results[3].status, 'rejected');
      assert.equal(results[4].status, 'fulfilled');
      const r1 = results[1] as PromiseRejectedResult;
      assert.equal((r1.reason as { code?: string }).code, '42501');
      const r4 = results[4] as PromiseFulfilledResult<unknown>;
      assert.deepEqual([...(r4.value as Array<{ v: string }>)], [{ v: 'v5' }]);
      assert.equal(await count(), 10);
    } finally {
      await sql.end();
    }
  });
});

describe('fail closed when the SQL parser cannot load', () => {
  it('refuses a session with guardrails: FATAL to the client, POLICY_UNENFORCEABLE', async () => {
    const engine = new PostgresEngine({
      loadSqlParser: () => Promise.reject(new Error('wasm missing')),
    });
    await using server = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      policy: examplePolicy('public'),
    });
    const err = await connectError(server.port);
    assert.equal(err.code, '0A000');
    assert.match(err.message, /policy cannot be enforced.*guardrails.*wasm missing/);
    const failure = assertFailed(await server.outcome(0), 'POLICY_UNENFORCEABLE');
    assert.match(failure.message, /guardrails/);
  });

  it('refuses a policy naming a rule this engine does not know', async () => {
    const engine = new PostgresEngine();
    await using server = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      policy: { guardrails: { deny: [{ rule: 'no-joins' as 'multi-statement' }] } },
    });
    const err = await connectError(server.port);
    assert.match(err.message, /rule: no-joins/);
    assertFailed(await server.outcome(0), 'POLICY_UNENFORCEABLE');
  });
});
