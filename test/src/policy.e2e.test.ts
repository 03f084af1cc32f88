/**
 * The example policy end to end: broker, agent and `hoop connect` as processes, the machine's
 * PostgreSQL as the target, and psql, pg (simple and extended), postgres.js (pipelined) and
 * pgbench as clients. No client sees a raw email or card number from `customers`, no denied
 * statement runs, every statement is recorded, and what is allowed works as usual.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { Deployment } from './support/deployment.js';
import { tempDir } from './support/env.js';
import { type ConnectProcess, runHoop, runHoopJson } from './support/hoop.js';
import { runToExit } from './support/process.js';
import { psqlEnv, runPsql } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

const db = `hoop_e2e_policy_${randomBytes(4).toString('hex')}`;
const admin = () => new pg.Client({ ...machinePostgres(), database: 'postgres' });

const customers = [
  ['Ada Lovelace', 'ada@example.com', '4111111111111111'],
  ['Grace Hopper', 'grace.hopper@example.org', '5500000000000004'],
  ['Alan Turing', 'alan@turing.example', '4000056655665556'],
] as const;
const secrets = customers.flatMap(([, email, card]) => [email, card]);

function assertNoSecrets(text: string, where: string): void {
  for (const s of secrets)
    assert.ok(!text.includes(s), `${where} leaked ${s}: ${text.slice(0, 400)}`);
}

const policy = `
guardrails:
  deny:
    - statements: [drop, truncate, alter, grant, revoke]
    - rule: delete-without-where
    - rule: update-without-where
    - functions: [pg_read_file, pg_ls_dir, lo_import, lo_export, dblink]
    - rule: copy-program
masking:
  columns:
    - column: public.customers.email
      strategy: redact
  detectors: [email, credit_card, iban, phone, us_ssn, jwt]
`;

describe('the example policy through the whole path', { timeout: 240_000 }, () => {
  let d: Deployment;
  let conn: ConnectProcess;

  before(async () => {
    const a = admin();
    await a.connect();
    await a.query(`create database ${db}`);
    await a.end();
    const t = new pg.Client({ ...machinePostgres(), database: db });
    await t.connect();
    await t.query(
      'create table customers (id serial primary key, name text, email text, card_number text)',
    );
    for (const [name, email, card] of customers) {
      await t.query('insert into customers (name, email, card_number) values ($1, $2, $3)', [
        name,
        email,
        card,
      ]);
    }
    await t.end();
    const init = await runToExit({
      name: 'pgbench -i',
      command: 'pgbench',
      args: [
        '-i',
        '-s',
        '1',
        '-q',
        '-h',
        machinePostgres().host,
        '-p',
        String(machinePostgres().port),
        '-U',
        'postgres',
        db,
      ],
      env: psqlEnv(),
      timeoutMs: 60_000,
    });
    assert.equal(init.code, 0, init.stderr);

    d = await Deployment.start();
    await d.addAgent('edge');
    await d.addConnection('shop', {
      agent: 'edge',
      target: { ...machinePostgres(), database: db },
    });
    const file = join(tempDir('policy'), 'policy.yaml');
    writeFileSync(file, policy);
    const set = await runHoop(
      ['admin', 'connections', 'policy', 'set', 'shop', '--file', file],
      d.adminEnv(),
    );
    assert.equal(set.code, 0, set.stderr);
    conn = await d.connect('shop');
  });

  after(async () => {
    await d?.dispose();
    const a = admin();
    await a.connect();
    await a.query(`drop database if exists ${db} with (force)`);
    await a.end();
  });

  test('psql: masked rows, denied DROP with the rule named, table intact, session still usable', async () => {
    const rows = await runPsql(
      conn.url,
      'select name, email, card_number from customers order by id',
    );
    assert.equal(rows.code, 0, rows.stderr);
    assert.match(rows.stdout, /Ada Lovelace\|\[redacted\]/);
    assertNoSecrets(rows.stdout, 'psql select');
    const drop = await runPsql(conn.url, 'drop table customers');
    assert.notEqual(drop.code, 0);
    assert.match(drop.stderr, /denied by policy.*drop/);
    const count = await runPsql(conn.url, 'select count(*) from customers');
    assert.equal(count.stdout.trim(), '3');
    const del = await runPsql(conn.url, 'delete from customers');
    assert.match(del.stderr, /delete-without-where/);
  });

  test('pg, simple and extended protocol (text and binary results): no raw value in any shape', async () => {
    const c = new pg.Client({ connectionString: conn.url });
    await c.connect();
    try {
      const shapes = [
        'select * from customers',
        'select email as e, card_number || $1 as c from customers',
        'select e from (select email as e from customers) s',
        'select json_agg(x) as j from (select name, card_number from customers) x',
      ];
      for (const sql of shapes) {
        const params = sql.includes('$1') ? [','] : [];
        const { rows } = await c.query(sql, params);
        assertNoSecrets(JSON.stringify(rows), sql);
      }
      // A masked column inside a returned expression loses its origin: denied, not leaked.
      for (const sql of [
        'select lower(email) from customers',
        'select reverse(email) from customers',
        'select row_to_json(c) from customers c',
      ]) {
        await assert.rejects(
          c.query(sql),
          (e: Error) =>
            /masking: derived/.test(e.message) && !secrets.some((x) => e.message.includes(x)),
        );
      }
      const binary = await c.query({
        text: 'select email, card_number from customers',
        binary: true,
      } as pg.QueryConfig);
      assertNoSecrets(JSON.stringify(binary.rows), 'binary results');
      await assert.rejects(c.query('select pg_read_file($1)', ['/etc/passwd']), /denied by policy/);
      const { rows } = await c.query('select count(*)::int as n from customers where id > $1', [0]);
      assert.deepEqual(rows, [{ n: 3 }]);
    } finally {
      await c.end();
    }
  });

  test('postgres.js pipelined: allowed queries succeed, denied ones fail, none hang', async () => {
    const sql = postgres(conn.url, { max: 1, idle_timeout: 1, connect_timeout: 10 });
    try {
      const results = await Promise.allSettled([
        sql`select email from customers order by id`,
        sql`truncate customers`,
        sql`select count(*)::int as n from customers`,
        sql.unsafe('update customers set name = name'),
        sql`select 1 as one`,
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
      );
      assertNoSecrets(JSON.stringify(results), 'postgres.js');
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test('pgbench -S runs normally through the policy', async () => {
    const { port } = conn;
    const run = await runToExit({
      name: 'pgbench -S',
      command: 'pgbench',
      args: [
        '-S',
        '-n',
        '-c',
        '2',
        '-j',
        '1',
        '-T',
        '3',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        db,
      ],
      env: psqlEnv(),
      timeoutMs: 60_000,
    });
    assert.equal(run.code, 0, run.stderr);
    const tps = Number(/tps = ([\d.]+)/.exec(run.stdout)?.[1] ?? 0);
    assert.ok(tps > 0, run.stdout);
    assert.match(run.stdout, /number of failed transactions: 0/);
  });

  test('every statement is recorded, denials and masking included, without raw values', async () => {
    const sessions = await runHoopJson<Array<{ id: string; connectionName: string }>>(
      ['sessions', 'list', '--limit', '200'],
      d.adminEnv(),
    );
    const ids = sessions.filter((s) => s.connectionName === 'shop').map((s) => s.id);
    assert.ok(ids.length >= 3);
    type Ev = { type: string; text?: string; denied?: { rule: string }; masked?: unknown };
    const all: Ev[] = [];
    await waitFor(
      async () => {
        all.length = 0;
        for (const id of ids) {
          const s = await d.api<{ events: Ev[] }>(`/api/v1/sessions/${id}`);
          all.push(...s.events);
        }
        return (
          all.some((e) => e.denied?.rule?.includes('drop')) &&
          all.some((e) => e.text?.includes('json_agg'))
        );
      },
      { timeoutMs: 20_000, what: 'statement events for the psql and pg sessions' },
    );
    const statements = all.filter((e) => e.type === 'statement');
    assert.ok(statements.some((e) => e.masked !== undefined));
    assertNoSecrets(JSON.stringify(all), 'audit events');
  });
});
