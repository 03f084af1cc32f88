/**
 * Masking and recording through the engine against the local PostgreSQL: no query a client
 * sends returns a raw email or card number from `customers`, by column origin (aliases,
 * cursors, binary results) or by detectors (expressions, JSON, aggregates, COPY); audit events
 * carry rows, errors, denials and masking counts, never raw values.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '@hoop/shared';
import type pg from 'pg';
import { detect, ibanValid, luhnValid } from './detectors.js';
import { PostgresEngine } from './engine.js';
import { BackendCode } from './messages.js';
import {
  adminClient,
  auditLog,
  examplePolicy,
  LOCAL,
  rawSession,
  uniqueSchema,
} from './policy-test-kit.js';
import { encodeQuery } from './protocol.js';
import { connectThrough, type EngineServer, pgTarget, startEngineServer } from './test-harness.js';

const schema = uniqueSchema('hoop_mask');
const C = `${schema}.customers`;
const people = [
  { name: 'Alice Liddell', email: 'alice@example.com', card: '4111 1111 1111 1111' },
  { name: 'Bob Builder', email: 'bob.builder@corp.example.org', card: '5500-0000-0000-0004' },
  { name: 'Carol Danvers', email: 'carol+x@mail.example.net', card: '340000000000009' },
];
const secrets = people.flatMap((p) => [p.email, p.card, p.card.replace(/[ -]/g, '')]);

function assertNoSecrets(value: unknown, context: string): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `${context}: leaked ${secret} in ${text.slice(0, 300)}`);
  }
}

describe('detectors (unit)', () => {
  it('confirms cards with Luhn and IBANs with mod 97, and finds values inside text', () => {
    assert.equal(luhnValid('4111111111111111'), true);
    assert.equal(luhnValid('4111111111111112'), false);
    assert.equal(ibanValid('GB82 WEST 1234 5698 7654 32'), true);
    assert.equal(ibanValid('GB82 WEST 1234 5698 7654 33'), false);
    const all = new Set(['email', 'credit_card', 'iban', 'phone', 'us_ssn', 'jwt'] as const);
    const found = (t: string) => detect(t, all).map((h) => [h.detector, t.slice(h.start, h.end)]);
    assert.deepEqual(found('{"e":"a.b@ex.com","n":42}'), [['email', 'a.b@ex.com']]);
    assert.deepEqual(found('card 4111-1111-1111-1111 ok'), [
      ['credit_card', '4111-1111-1111-1111'],
    ]);
    assert.deepEqual(found('x9411111111111111117'), [['credit_card', '4111111111111111']]);
    assert.deepEqual(found('order 1234567890123 shipped'), []);
    assert.deepEqual(found('ssn 123-45-6789'), [['us_ssn', '123-45-6789']]);
    assert.deepEqual(found('call +44 20 7946 0958 now'), [['phone', '+44 20 7946 0958']]);
    assert.deepEqual(found('iban GB82WEST12345698765432.'), [['iban', 'GB82WEST12345698765432']]);
    assert.equal(found('t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghij')[0]?.[0], 'jwt');
  });
});

describe('masking through the engine', () => {
  const engine = new PostgresEngine({ maskingKey: 'test-key' });
  const audit = auditLog();
  let server: EngineServer;
  let admin: pg.Client;
  let client: pg.Client;

  before(async () => {
    admin = await adminClient();
    await admin.query(`create schema ${schema}`);
    await admin.query(
      `create table ${C} (id int primary key, name text, email text, card_number varchar(32))`,
    );
    for (const [i, p] of people.entries()) {
      await admin.query(`insert into ${C} values ($1, $2, $3, $4)`, [
        i + 1,
        p.name,
        p.email,
        p.card,
      ]);
    }
    await admin.query(`create view ${schema}.v as select * from ${C}`);
    // Views created outside hoop that transform a masked column (and a view over one).
    await admin.query(`create view ${schema}.rv as select id, reverse(email) as r from ${C}`);
    await admin.query(`create view ${schema}.vv as select * from ${schema}.rv`);
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

  it('masks every column of a view (or a view over it) that reads a masked column', async () => {
    for (const view of ['rv', 'vv']) {
      const { rows } = await client.query(`select id, r from ${schema}.${view} order by id`);
      assert.ok(rows.length > 0);
      for (const row of rows) {
        assert.equal(row.r, '[redacted]', `${view}: the transformed email is masked`);
      }
      const raw = JSON.stringify(rows);
      for (const p of people) {
        assert.ok(
          !raw.includes([...p.email].reverse().join('')),
          `${view} leaked a reversed email`,
        );
      }
    }
  });

  it('masks the email column by origin, surviving aliases', async () => {
    const { rows } = await client.query(`select id, name, email, email as e from ${C} order by id`);
    assert.equal(rows[0].email, '[redacted]');
    assert.equal(rows[0].e, '[redacted]');
    assert.equal(rows[0].name, 'Alice Liddell', 'unmasked columns are untouched');
    assertNoSecrets(rows, 'aliases');
  });

  const queries = [
    `select * from ${C}`,
    `select email as e, card_number as c from ${C}`,
    `select lower(email), upper(card_number) from ${C}`,
    `select email || '' as x, card_number || '' as y from ${C}`,
    `select email::varchar(100), card_number::text from ${C}`,
    `select json_agg(c) from ${C} c`,
    `select row_to_json(c) from ${C} c`,
    `select string_agg(email || ':' || card_number, ',') from ${C}`,
    `select * from ${schema}.v`,
    `with x as (select * from ${C}) select * from x`,
    `select (select email from ${C} where id = 1) as sub`,
    `select replace(card_number, ' ', '') from ${C}`,
    `select convert_to(email, 'UTF8') from ${C}`,
    `select array_agg(email) from ${C}`,
    `select jsonb_build_object('e', email, 'c', card_number) from ${C}`,
  ];
  for (const sql of queries) {
    it(`no raw value: ${sql}`, async () => {
      // Simple, then extended protocol. A masked column inside a returned expression is denied
      // (rule "masking: derived"); anything allowed must carry no raw value.
      for (const run of [() => client.query(sql), () => client.query({ text: sql, values: [] })]) {
        try {
          const { rows } = await run();
          assert.ok(rows.length > 0);
          assertNoSecrets(rows, sql);
        } catch (err) {
          const e = err as { code?: string; message?: string };
          assert.equal(e.code, '42501', String(e.message));
          assert.match(String(e.message), /masking: derived/);
          assertNoSecrets(String(e.message), `${sql} (denial)`);
        }
      }
    });
  }

  it('no raw value from a cursor FETCH', async () => {
    await client.query('begin');
    await client.query(`declare cur cursor for select * from ${C}`);
    const { rows } = await client.query('fetch all from cur');
    await client.query('commit');
    assert.equal(rows.length, 3);
    assertNoSecrets(rows, 'cursor');
  });

  it('denies a masked column inside a returned expression, naming the rule', async () => {
    await assert.rejects(
      client.query(`select reverse(email) from ${C}`),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /email is masked.*masking: derived/);
        return true;
      },
    );
    // Filtering on it returns no value and stays allowed; the session is still usable.
    const { rows } = await client.query(
      `select name from ${C} where email like '%@%' order by email`,
    );
    assert.ok(rows.length > 0);
  });

  it('no raw value in binary-format results', async () => {
    const { rows } = await client.query({
      text: `select email, card_number, name from ${C}`,
      values: [],
      binary: true,
    } as pg.QueryConfig);
    assertNoSecrets(
      rows.map((r: Record<string, unknown>) =>
        Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : v)),
      ),
      'binary',
    );
  });

  it('no raw value in error messages', async () => {
    await assert.rejects(client.query(`select email::int from ${C}`), (err: Error) => {
      assertNoSecrets(err.message, 'error');
      return true;
    });
  });

  it('denies COPY of the table with masked columns, masks COPY (query) output by detectors', async () => {
    await assert.rejects(client.query(`copy ${C} to stdout`), { code: '42501' });
    await assert.rejects(client.query(`copy (select * from ${schema}.customers) to stdout`), {
      code: '42501',
    });
    // A copy that does not name the table: the view. Detectors catch the values.
    const raw = await rawSession(server.port);
    for (const format of ['text', 'csv']) {
      raw.send(encodeQuery(`copy (select * from ${schema}.v) to stdout with (format ${format})`));
      const messages = await raw.readUntil(BackendCode.readyForQuery);
      const data = messages
        .filter((m) => m.code === BackendCode.copyData)
        .map((m) => m.body.toString('utf8'))
        .join('');
      assert.equal(data.split('\n').length, 4, data);
      assert.match(data, /\[redacted:email\]/);
      assertNoSecrets(data, `copy ${format}`);
    }
    raw.destroy();
  });

  it('records statements with rows, errors, denials and masking counts, never raw values', async () => {
    audit.events.length = 0;
    await client.query(`select email, card_number from ${C}`);
    await client.query(`select * from ${C} where email = $1`, [people[0]?.email]);
    await client.query('select 1/0').catch(() => {});
    await client.query(`drop table ${C}`).catch(() => {});
    const statements = audit.events.filter(
      (e): e is Extract<AuditEvent, { type: 'statement' }> => e.type === 'statement',
    );
    assert.equal(statements.length, 4);
    const [select, withParam, failed, denied] = statements;
    assert.equal(select?.rows, 3);
    assert.equal(select?.tag, 'SELECT 3');
    assert.equal(select?.masked?.columns[`${schema}.customers.email`], 3);
    assert.equal(select?.masked?.detectors['credit_card'], 3);
    assert.ok((select?.durationMs ?? -1) >= 0);
    assert.deepEqual(withParam?.params, ['[redacted:email]']);
    assert.equal(failed?.error?.code, '22012');
    assert.equal(denied?.denied?.rule, 'statements: drop');
    assertNoSecrets(audit.events, 'audit');
  });

  it('hash strategy is stable across sessions (joins still work); partial keeps the tail', async () => {
    const policy = {
      masking: {
        columns: [
          { column: `${schema}.customers.email`, strategy: 'hash' as const },
          { column: `${schema}.customers.card_number`, strategy: 'partial' as const },
        ],
      },
    };
    await using other = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      policy,
    });
    const a = await connectThrough(other.port);
    const b = await connectThrough(other.port);
    const ra = await a.client.query(`select email, card_number from ${C} order by id`);
    const rb = await b.client.query(`select email as x from ${C} order by id`);
    assert.match(ra.rows[0].email, /^hash:[0-9a-f]{16}$/);
    assert.equal(ra.rows[0].email, rb.rows[0].x);
    assert.equal(ra.rows[0].card_number, '***************1111');
    await a.client.end();
    await b.client.end();
  });
});

describe('session events and recording off', () => {
  it('emits session-start and session-end', async () => {
    const engine = new PostgresEngine();
    const audit = auditLog();
    await using server = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      audit: audit.sink,
    });
    const { client } = await connectThrough(server.port);
    await client.query('select 1');
    await client.end();
    await server.outcome(0);
    assert.deepEqual(
      audit.events.map((e) => e.type),
      ['session-start', 'statement', 'session-end'],
    );
  });
});
