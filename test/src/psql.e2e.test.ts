/**
 * psql and node-postgres through `hoop connect` to a private PostgreSQL that only accepts
 * SCRAM-SHA-256: broker, agents and `hoop connect` are separate processes; the target's password
 * is given once to `hoop admin connections create --password-env` (or stays in the agent's
 * environment with `--password-ref env:NAME`), and the clients never have it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PostgresInstance } from '@hoop/shared/testing';
import pg from 'pg';
import { Deployment } from './support/deployment.js';
import { tempDir } from './support/env.js';
import { type AgentProcess, type ConnectProcess, runHoop, runHoopJson } from './support/hoop.js';
import { psqlValue, runPsql, spawnPsql } from './support/psql.js';
import { directUrl, haveOpenssl, scramPostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

const REF_VAR = 'HOOP_E2E_AGENT_PG_PASSWORD';

/** A node-postgres client for `hoop connect`'s URL that fails if anyone asks it for a password. */
function pgClient(url: string): pg.Client {
  return new pg.Client({
    connectionString: url,
    password: async () => {
      throw new Error('the server asked the client for a password');
    },
    connectionTimeoutMillis: 10_000,
  });
}

/** The NUL-separated environment of a process, as root may read it. */
function environOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8');
}

describe('psql and pg through hoop connect to a SCRAM-SHA-256 PostgreSQL', {
  timeout: 240_000,
}, () => {
  let target: PostgresInstance | undefined;
  let d: Deployment | undefined;
  let conn: ConnectProcess;
  let edge: AgentProcess;

  before(
    async () => {
      target = await scramPostgres({ ssl: haveOpenssl });
      d = await Deployment.start();
      ({ agent: edge } = await d.addAgent('edge'));
      await d.addAgent('edge-ref', { env: { [REF_VAR]: target.password } });
      await d.addConnection('scram', {
        agent: 'edge',
        target,
        password: { env: target.password },
      });
      await d.addConnection('scram-ref', {
        agent: 'edge-ref',
        target,
        password: { ref: `env:${REF_VAR}` },
      });
      conn = await d.connect('scram');
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
    await target?.stop();
  });

  test('control: the target refuses a client that has no password', async () => {
    const direct = await runPsql(directUrl(target!), 'select 1');
    assert.equal(direct.code, 2, direct.stderr);
    assert.match(direct.stderr, /no password supplied/);
  });

  test('psql runs queries through hoop connect without any password', async () => {
    const t = target!;
    assert.equal(
      await psqlValue(
        conn.url,
        "select current_user, 6 * 7, inet_server_port(), current_setting('password_encryption')",
      ),
      `${t.user}|42|${t.port}|scram-sha-256`,
    );
    await psqlValue(
      conn.url,
      'create table if not exists e2e_notes (id int primary key, body text)',
    );
    await psqlValue(
      conn.url,
      "insert into e2e_notes values (1, 'through hoop') on conflict do nothing",
    );
    assert.equal(
      await psqlValue(conn.url, 'select body from e2e_notes where id = 1'),
      'through hoop',
    );
    // The role really has a SCRAM verifier: the session above authenticated with it.
    assert.match(
      await psqlValue(conn.url, `select rolpassword from pg_authid where rolname = '${t.user}'`),
      /^SCRAM-SHA-256\$/,
    );
  });

  test('the password is in no process environment, log or client-visible output', async () => {
    const password = target!.password;
    const broker = d!.broker.process;
    // The edge agent gets it per session from the broker; only edge-ref has it in its env.
    for (const pid of [broker.pid, edge.pid, conn.pid]) {
      assert.ok(!environOf(pid).includes(password), `process ${pid} has the password in its env`);
    }
    const list = await runHoopJson<unknown[]>(['admin', 'connections', 'list'], d!.adminEnv());
    assert.ok(!JSON.stringify(list).includes(password), 'connections list shows the password');
    assert.ok(!broker.stderr.includes(password), 'the broker logged the password');
    assert.ok(!conn.process.stderr.includes(password), 'hoop connect printed the password');
    assert.ok(!edge.process.stderr.includes(password), 'the agent logged the password');
  });

  test('--password-ref env:NAME: the agent reads the password from its own environment', async () => {
    const shown = await runHoopJson<{ credential: string }>(
      ['admin', 'connections', 'show', 'scram-ref'],
      d!.adminEnv(),
    );
    assert.equal(shown.credential, `ref:env:${REF_VAR}`);
    await using viaRef = await d!.connect('scram-ref');
    assert.equal(await psqlValue(viaRef.url, 'select current_user, 1 + 1'), `${target!.user}|2`);
  });

  test('HOOP_PG_WARM=1: the next session runs on a backend the agent logged in (SCRAM) beforehand', async () => {
    const t = target!;
    const { agent: warmAgent } = await d!.addAgent('edge-warm', { env: { HOOP_PG_WARM: '1' } });
    await d!.addConnection('scram-warm', {
      agent: 'edge-warm',
      target: t,
      password: { env: t.password },
    });
    await using warm = await d!.connect('scram-warm');
    const first = Number(await psqlValue(warm.url, 'select pg_backend_pid()'));
    // Seen on the target itself: psql's spare, logged in and never used (no statement yet).
    const observer = new pg.Client({ ...t, application_name: 'hoop-e2e-observer' });
    await observer.connect();
    let spare: number;
    try {
      spare = await waitFor(
        async () => {
          const { rows } = await observer.query<{ pid: number }>(
            "select pid from pg_stat_activity where application_name = 'psql' and query = '' and pid <> $1",
            [first],
          );
          return rows.length === 1 ? (rows[0] as { pid: number }).pid : undefined;
        },
        { timeoutMs: 10_000, what: 'a warm connection on the target' },
      );
    } finally {
      await observer.end();
    }
    assert.equal(Number(await psqlValue(warm.url, 'select pg_backend_pid()')), spare);
    assert.equal(await psqlValue(warm.url, 'select current_user, 1 + 1'), `${t.user}|2`);
    assert.ok(
      !environOf(warmAgent.pid).includes(t.password),
      'the warm agent has the password in its env',
    );
  });

  /** `hoop agent start` for a new agent `name` with `env` added exits 2 with `message`. */
  async function assertAgentRefuses(
    name: string,
    env: Record<string, string>,
    message: RegExp,
  ): Promise<void> {
    const token = await d!.createAgent(name);
    const result = await runHoop(['agent', 'start'], {
      ...d!.adminEnv(),
      HOOP_AGENT_TOKEN: token,
      ...env,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }

  test('HOOP_PG_WARM out of range: hoop agent start refuses it (exit 2)', async () => {
    await assertAgentRefuses(
      'edge-warm-bad',
      { HOOP_PG_WARM: '99' },
      /HOOP_PG_WARM "99" must be a whole number from 0 to 16/,
    );
  });

  test('HOOP_AGENT_ADMISSION=strict: an agent that logs in only once the session is recorded serves psql; a bad value exits 2', async () => {
    const t = target!;
    await d!.addAgent('edge-strict', { env: { HOOP_AGENT_ADMISSION: 'strict' } });
    await d!.addConnection('scram-strict', {
      agent: 'edge-strict',
      target: t,
      password: { env: t.password },
    });
    await using strict = await d!.connect('scram-strict');
    assert.equal(await psqlValue(strict.url, 'select current_user, 1 + 1'), `${t.user}|2`);

    await assertAgentRefuses(
      'edge-admission-bad',
      { HOOP_AGENT_ADMISSION: 'later' },
      /HOOP_AGENT_ADMISSION "later" must be overlap or strict/,
    );
  });

  test('8 concurrent node-postgres clients through one hoop connect', async () => {
    const clients = Array.from({ length: 8 }, () => pgClient(conn.url));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const started = Date.now();
      const results = await Promise.all(
        clients.map((c, i) =>
          c.query<{ n: number; pid: number }>(
            'select $1::int as n, pg_backend_pid() as pid, pg_sleep(1)',
            [i],
          ),
        ),
      );
      const elapsed = Date.now() - started;
      assert.deepEqual(
        results.map((r) => r.rows[0]?.n),
        [0, 1, 2, 3, 4, 5, 6, 7],
      );
      assert.equal(new Set(results.map((r) => r.rows[0]?.pid)).size, 8, 'one backend per client');
      // Eight 1 s sleeps ran side by side, not one after another (that would take 8 s).
      assert.ok(elapsed < 5_000, `8 concurrent 1 s queries took ${elapsed} ms`);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
  });

  test('two hoop connect processes serve at the same time', async () => {
    await using second = await d!.connect('scram');
    assert.notEqual(second.port, conn.port);
    const [a, b] = await Promise.all([
      psqlValue(conn.url, "select 'first', pg_sleep(0.3)"),
      psqlValue(second.url, "select 'second', pg_sleep(0.3)"),
    ]);
    assert.equal(a, 'first|');
    assert.equal(b, 'second|');
    const c = pgClient(second.url);
    await c.connect();
    try {
      assert.equal((await c.query('select 2 + 2 as v')).rows[0]?.v, 4);
    } finally {
      await c.end();
    }
  });

  test('^C in psql cancels the running query through hoop', async () => {
    const sleeper = spawnPsql(conn.url, 'select pg_sleep(30)');
    try {
      await waitFor(
        async () =>
          (await psqlValue(
            conn.url,
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'",
          )) === '1',
        {
          timeoutMs: 15_000,
          what: 'pg_sleep(30) to be running',
          details: () => sleeper.describe(),
        },
      );
      const started = Date.now();
      const exit = await sleeper.signal('SIGINT', 10_000);
      const elapsed = Date.now() - started;
      assert.equal(exit.code, 1, sleeper.describe());
      assert.match(sleeper.stderr, /canceling statement due to user request/);
      assert.ok(elapsed < 5_000, `psql took ${elapsed} ms to return after ^C`);
      await waitFor(
        async () =>
          (await psqlValue(
            conn.url,
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'",
          )) === '0',
        { timeoutMs: 10_000, what: 'the cancelled query to be gone from the target' },
      );
    } finally {
      await sleeper.kill();
    }
  });

  test('a wrong or missing stored password: psql gets a FATAL that says the target refused it', async () => {
    await d!.addConnection('scram-wrong', {
      agent: 'edge',
      target: target!,
      password: { env: 'not-the-password' },
    });
    await using wrong = await d!.connect('scram-wrong');
    const result = await runPsql(wrong.url, 'select 1');
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /FATAL: +hoop: the target rejected the connection's credential/);
    assert.match(result.stderr, /password authentication failed/);
    assert.ok(!result.stderr.includes('not-the-password'), 'the error shows the password');

    // And a connection with no credential at all to a target that wants one.
    await d!.addConnection('scram-none', { agent: 'edge', target: target! });
    await using none = await d!.connect('scram-none');
    const missing = await runPsql(none.url, 'select 1');
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /FATAL: +hoop: .*asks for a password and the connection has none/);
  });
  test('a 3 MiB query parameter (larger than a tunnel frame) arrives intact', async () => {
    const value = 'hoop-'.repeat(629_146).slice(0, 3 * 1024 * 1024);
    const client = pgClient(conn.url);
    await client.connect();
    try {
      const result = await client.query<{ length: number; md5: string }>(
        'select length($1::text) as length, md5($1::text) as md5',
        [value],
      );
      assert.equal(result.rows[0]?.length, value.length);
      assert.equal(result.rows[0]?.md5, createHash('md5').update(value).digest('hex'));
    } finally {
      await client.end();
    }
  });

  test('COPY in and out through hoop (psql \\copy)', async () => {
    const dir = tempDir('copy');
    const input = join(dir, 'in.csv');
    const output = join(dir, 'out.csv');
    const rows = Array.from({ length: 10_000 }, (_, i) => `${i + 1},"row ${i + 1}, with a comma"`);
    writeFileSync(input, `${rows.join('\n')}\n`);
    await psqlValue(conn.url, 'create table e2e_copy (id int primary key, body text)');
    assert.equal(
      await psqlValue(conn.url, `\\copy e2e_copy from '${input}' with (format csv)`),
      'COPY 10000',
    );
    assert.equal(
      await psqlValue(conn.url, 'select count(*), sum(id) from e2e_copy'),
      '10000|50005000',
    );
    await psqlValue(
      conn.url,
      `\\copy (select * from e2e_copy order by id) to '${output}' with (format csv)`,
    );
    assert.equal(readFileSync(output, 'utf8'), readFileSync(input, 'utf8'));
  });

  test("TLS to the target: --tls prefer encrypts the agent's connection, --tls disable does not", {
    skip: haveOpenssl ? false : 'no openssl command to make the target a certificate',
  }, async () => {
    const probe = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()';
    assert.equal(await psqlValue(conn.url, probe), 'f');
    await d!.addConnection('scram-tls', {
      agent: 'edge',
      target: target!,
      password: { env: target!.password },
      tls: 'prefer',
    });
    await using tls = await d!.connect('scram-tls');
    assert.equal(await psqlValue(tls.url, probe), 't');
  });

  test('--tls require to a target with an untrusted certificate: psql gets a FATAL', {
    skip: haveOpenssl ? false : 'no openssl command to make the target a certificate',
  }, async () => {
    await d!.addConnection('scram-tls-strict', {
      agent: 'edge',
      target: target!,
      password: { env: target!.password },
      tls: 'require',
    });
    await using strict = await d!.connect('scram-tls-strict');
    const result = await runPsql(strict.url, 'select 1');
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /FATAL: +hoop: .*(certificate|TLS)/i);
  });
});
