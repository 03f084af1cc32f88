/**
 * Statement reviews beyond psql, with real processes: a broker, an agent, the machine's
 * PostgreSQL behind a connection whose policy holds DDL and writes for approval, people as local
 * users driving the real `hoop` CLI.
 *
 * - the extended protocol is held like the simple one: a `pg` parameterized INSERT waits (its
 *   parameters shown to approvers), runs exactly once when another person approves it with
 *   `hoop reviews approve`; a rejected one fails with 42501 and the same connection goes on;
 *   postgres.js pipelining keeps its order behind a held statement;
 * - `hoop exec`: a SELECT prints rows (`--json`); a DDL exits 7 with the review id; `--review ID`
 *   refuses other SQL and other people, then runs it once; a second `--review ID` is refused;
 *   `--wait` completes after approval, and a rejection is a clear error.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { Deployment } from './support/deployment.js';
import { type Env, tempDir } from './support/env.js';
import { type ConnectProcess, runHoop, spawnHoop } from './support/hoop.js';
import { machinePostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

const db = `hoop_e2e_exec_${randomBytes(4).toString('hex')}`;
const direct = () => new pg.Client({ ...machinePostgres(), database: db });
const REVIEW_ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

const POLICY = `
reviews:
  approvers: [dba]
  statements: [ddl, write]
`;

interface ReviewJson {
  id: string;
  status: string;
  statement: string | null;
}

describe('statement reviews: extended protocol and hoop exec', { timeout: 240_000 }, () => {
  let d: Deployment;
  let conn: ConnectProcess;
  let target: pg.Client;
  const env: Record<string, Env> = {};

  /** `hoop ARGS` as `who`; asserts the exit code; returns stdout and stderr. */
  async function hoop(
    who: string,
    args: string[],
    code = 0,
  ): Promise<{ stdout: string; stderr: string }> {
    const r = await runHoop(args, env[who] as Env);
    assert.equal(r.code, code, `hoop ${args.join(' ')} as ${who}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  const count = async (where = 'true'): Promise<number> =>
    (await target.query(`select count(*)::int as n from items where ${where}`)).rows[0].n;

  const tableExists = async (name: string): Promise<boolean> =>
    (await target.query('select to_regclass($1) is not null as e', [name])).rows[0].e;

  const review = async (id: string): Promise<ReviewJson> =>
    JSON.parse((await hoop('abe', ['reviews', 'show', id, '--json'])).stdout) as ReviewJson;

  before(async () => {
    const admin = new pg.Client({ ...machinePostgres(), database: 'postgres' });
    await admin.connect();
    await admin.query(`create database ${db}`);
    await admin.end();
    target = direct();
    await target.connect();
    await target.query('create table items (n int)');
    await target.query('insert into items values (1), (2)');

    d = await Deployment.start();
    await d.addAgent('edge');
    await d.addConnection('shop', {
      agent: 'edge',
      target: { ...machinePostgres(), database: db },
    });
    env['admin'] = d.adminEnv();
    const file = join(tempDir('exec'), 'policy.yaml');
    writeFileSync(file, POLICY);
    await hoop('admin', ['admin', 'connections', 'policy', 'set', 'shop', '--file', file]);
    for (const [name, group] of [
      ['rita', 'dev'],
      ['abe', 'dba'],
    ] as const) {
      await hoop('admin', [
        'admin',
        'access',
        'allow',
        '--group',
        group,
        '--connection',
        'shop',
        '--actions',
        'connect,exec',
      ]);
      env[name] = d.broker.userEnv(await addUser(d, name, [group]));
    }
    conn = await d.connect('shop', env['rita']);
  });

  after(async () => {
    await d?.dispose();
    await target?.end().catch(() => {});
    const admin = new pg.Client({ ...machinePostgres(), database: 'postgres' });
    await admin.connect();
    await admin.query(`drop database if exists ${db} with (force)`);
    await admin.end();
  });

  test('pg parameterized INSERT is held, shown with its parameters, approved, runs once; a rejected one leaves the connection usable', async () => {
    const c = new pg.Client({ connectionString: conn.url });
    c.on('error', () => {});
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    try {
      const insert = c.query({ text: 'insert into items values ($1), ($2)', values: [10, 11] });
      const id = await waitFor(() => REVIEW_ID.exec(notices[0] ?? '')?.[0], {
        timeoutMs: 20_000,
        what: 'the waiting notice',
      });
      assert.match(notices[0] as string, /^hoop: waiting for approval: review /);
      assert.equal(
        (await review(id)).statement,
        "insert into items values ($1), ($2)\n-- parameters: $1 = '10', $2 = '11'",
      );
      assert.equal(await count('n >= 10'), 0, 'nothing runs before approval');
      await hoop('rita', ['reviews', 'approve', id], 3); // not by the requester
      await hoop('abe', ['reviews', 'approve', id]);
      assert.equal((await insert).rowCount, 2);
      assert.equal(await count('n >= 10'), 2, 'ran exactly once');

      const refused = c.query({ text: 'delete from items where n = $1', values: [10] });
      void refused.catch(() => {}); // asserted below, after the rejection
      const id2 = await waitFor(() => REVIEW_ID.exec(notices[1] ?? '')?.[0], {
        timeoutMs: 20_000,
        what: 'the second waiting notice',
      });
      await hoop('abe', ['reviews', 'reject', id2, '--reason', 'not today']);
      await assert.rejects(refused, (e: pg.DatabaseError) => {
        assert.equal(e.code, '42501');
        assert.match(e.message, /rejected by abe: not today/);
        assert.equal(e.detail, `hoop error REVIEW_NOT_APPROVED, review ${id2}`);
        return true;
      });
      // Same connection, still usable, for the extended and the simple protocol.
      assert.deepEqual(
        (await c.query({ text: 'select count(*)::int as n from items where n = $1', values: [10] }))
          .rows,
        [{ n: 1 }],
      );
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
      assert.equal(await count('n = 10'), 1);
    } finally {
      await c.end().catch(() => {});
    }
  });

  test('postgres.js: a pipelined query waits behind the held one and keeps its order', async () => {
    const sql = postgres(conn.url, { max: 1, onnotice: () => {} });
    try {
      const notices: string[] = [];
      const listen = postgres(conn.url, { max: 1, onnotice: (n) => notices.push(n.message ?? '') });
      try {
        const inserted = listen`insert into items values (${20})`;
        const after = listen`select count(*)::int as n from items where n = 20`;
        void inserted.catch(() => {});
        void after.catch(() => {});
        const id = await waitFor(() => REVIEW_ID.exec(notices[0] ?? '')?.[0], {
          timeoutMs: 20_000,
          what: 'the postgres.js waiting notice',
        });
        assert.match((await review(id)).statement ?? '', /\$1 = '20'/);
        await hoop('abe', ['reviews', 'approve', id]);
        assert.equal((await inserted).count, 1);
        assert.deepEqual([...(await after)], [{ n: 1 }], 'the SELECT ran after the INSERT');
        assert.equal(await count('n = 20'), 1);
      } finally {
        await listen.end();
      }
      assert.deepEqual([...(await sql`select 1 as one`)], [{ one: 1 }]);
    } finally {
      await sql.end();
    }
  });

  test('hoop exec --json prints rows and command tags', async () => {
    const { stdout } = await hoop('rita', [
      'exec',
      'shop',
      '--json',
      '-c',
      'select n, null::text as missing from items where n <= 2 order by n',
    ]);
    assert.deepEqual(JSON.parse(stdout), [
      {
        tag: 'SELECT 2',
        command: 'SELECT',
        rowCount: 2,
        columns: ['n', 'missing'],
        rows: [
          ['1', null],
          ['2', null],
        ],
      },
    ]);
    const human = await hoop('rita', ['exec', 'shop', '-c', 'select n from items where n = 1']);
    assert.match(human.stdout, /^n\n-+\n1\n\(1 row\)\n$/);
  });

  test('hoop exec: a DDL exits 7 with the review id; --review runs it once after approval', async () => {
    const ddl = 'create table exec_made (id int)';
    const pending = await hoop('rita', ['exec', 'shop', '--json', '-c', ddl], 7);
    const { review: id, status } = JSON.parse(pending.stdout) as { review: string; status: string };
    assert.equal(status, 'pending');
    assert.match(id, REVIEW_ID);
    assert.equal(JSON.parse(pending.stderr).error.code, 'PENDING_APPROVAL');
    assert.equal((await review(id)).statement, ddl);
    assert.equal(await tableExists('exec_made'), false);

    // Not approved yet: still pending.
    await hoop('rita', ['exec', 'shop', '--review', id, '-c', ddl], 7);
    await hoop('abe', ['reviews', 'approve', id]);
    // Other SQL, or someone else, cannot use the approval.
    const other = await hoop(
      'rita',
      ['exec', 'shop', '--json', '--review', id, '-c', 'create table exec_other (id int)'],
      8,
    );
    assert.equal(JSON.parse(other.stderr).error.code, 'REVIEW_MISMATCH');
    await hoop('abe', ['exec', 'shop', '--review', id, '-c', ddl], 4);
    assert.equal(await tableExists('exec_other'), false);
    assert.equal(await tableExists('exec_made'), false);

    const ran = await hoop('rita', ['exec', 'shop', '--review', id, '-c', ddl]);
    assert.equal(ran.stdout.trim(), 'CREATE TABLE');
    assert.equal(await tableExists('exec_made'), true);

    const again = await hoop('rita', ['exec', 'shop', '--json', '--review', id, '-c', ddl], 8);
    assert.equal(JSON.parse(again.stderr).error.code, 'REVIEW_CONSUMED');
    assert.match(JSON.parse(again.stderr).error.message, /already ran its statement/);

    const audit = JSON.parse((await hoop('admin', ['audit', 'list', '--json'])).stdout) as {
      type: string;
      data?: { subject?: string };
    }[];
    const steps = audit
      .filter((e) => JSON.stringify(e).includes(id))
      .map((e) => e.type)
      .filter((t) => t.startsWith('review-'));
    assert.deepEqual(
      steps.filter((t) => t !== 'review-approval'),
      ['review-created', 'review-decided', 'review-consumed'],
    );
  });

  test('a review approved for a held session cannot run again with --review', async () => {
    const c = new pg.Client({ connectionString: conn.url });
    c.on('error', () => {});
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    try {
      const statement = 'insert into items values (40)';
      const insert = c.query(statement);
      const id = await waitFor(() => REVIEW_ID.exec(notices[0] ?? '')?.[0], {
        timeoutMs: 20_000,
        what: 'the waiting notice',
      });
      await hoop('abe', ['reviews', 'approve', id]);
      assert.equal((await insert).rowCount, 1);
      await hoop('rita', ['exec', 'shop', '--review', id, '-c', statement], 8);
      assert.equal(await count('n = 40'), 1);
    } finally {
      await c.end().catch(() => {});
    }
  });

  test('hoop exec --wait holds until approved, then prints the result; a rejection is an error', async () => {
    const waiting = d.scope.use(
      spawnHoop(
        'hoop exec --wait',
        ['exec', 'shop', '--wait', '-c', 'insert into items values (30)'],
        env['rita'] as Env,
      ),
    );
    const id = await waitFor(() => /waiting for approval: review (\S+)/.exec(waiting.stderr)?.[1], {
      timeoutMs: 30_000,
      what: 'the spinner line',
      details: () => waiting.describe(),
    });
    assert.equal(await count('n = 30'), 0);
    await hoop('abe', ['reviews', 'approve', id]);
    const exit = await waiting.exited;
    assert.equal(exit.code, 0, waiting.describe());
    assert.equal(waiting.stdout.trim(), 'INSERT 0 1');
    assert.equal(await count('n = 30'), 1);

    const rejected = d.scope.use(
      spawnHoop(
        'hoop exec --wait (rejected)',
        ['exec', 'shop', '--wait', '-c', 'delete from items'],
        env['rita'] as Env,
      ),
    );
    const id2 = await waitFor(
      () => /waiting for approval: review (\S+)/.exec(rejected.stderr)?.[1],
      { timeoutMs: 30_000, what: 'the spinner line', details: () => rejected.describe() },
    );
    await hoop('abe', ['reviews', 'reject', id2, '--reason', 'no']);
    assert.equal((await rejected.exited).code, 3, rejected.describe());
    assert.match(
      rejected.stderr,
      /error: statement not approved: review \S+ was rejected by abe: no/,
    );
    assert.ok((await count()) > 0);
  });
});

/** A local user in `groups`, logged in: their token. */
async function addUser(d: Deployment, name: string, groups: readonly string[]): Promise<string> {
  const password = `pw-${name}-${randomBytes(6).toString('hex')}`;
  const post = async (path: string, body: unknown, bearer?: string) => {
    const res = await fetch(new URL(path, d.broker.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${path}: ${res.status} ${text}`);
    return JSON.parse(text) as { token?: string };
  };
  await post('/api/v1/users', { name, groups, password }, d.broker.adminToken);
  return (await post('/api/v1/auth/login', { user: name, password })).token as string;
}
