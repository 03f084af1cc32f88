/**
 * What users see when something is wrong: `hoop connect` exits with a distinct code per cause
 * (3 denied, 4 not found, 5 agent offline, 6 broker unreachable, 2 usage) and says what to do
 * next on stderr, as text or as a JSON error with --json; and a client of a running
 * `hoop connect` whose session cannot open gets a Postgres FATAL naming the cause.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Deployment } from './support/deployment.js';
import { runHoop } from './support/hoop.js';
import { psqlValue, runPsql } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

/** A local TCP port that nothing listens on (it was free a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** Text errors: "error: …" then "hint: …" (a non-empty hint). */
function assertHumanError(stderr: string, message: RegExp): void {
  assert.match(stderr, /^error: .+$/m, stderr);
  assert.match(stderr, /^hint: \S.+$/m, stderr);
  assert.match(stderr, message);
}

function jsonError(stderr: string): { code: string; message: string; hint: string } {
  const line = stderr.split('\n').find((l) => l.startsWith('{"error"'));
  assert.ok(line, `no JSON error on stderr:\n${stderr}`);
  return (JSON.parse(line) as { error: { code: string; message: string; hint: string } }).error;
}

describe('errors: exit codes, hints, and FATALs for clients', { timeout: 180_000 }, () => {
  const target = machinePostgres();
  let d: Deployment | undefined;

  before(
    async () => {
      d = await Deployment.start();
      await d.addAgent('edge');
      await d.addConnection('pg', { agent: 'edge', target });
      await d.createAgent('sleepy'); // registered, never started
      await d.addConnection('offline', { agent: 'sleepy', target });
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
  });

  const connectArgs = (name: string) => ['connect', name, '--port', '0'];

  test('a wrong token: exit 3 with a hint', async () => {
    const env = d!.broker.userEnv('hoop_this_is_not_a_valid_token');
    const human = await runHoop(connectArgs('pg'), env);
    assert.equal(human.code, 3, human.stderr);
    assertHumanError(human.stderr, /token/);
    assert.ok(!human.stderr.includes('hoop_this_is_not_a_valid_token'), 'the token is echoed');
    const json = await runHoop([...connectArgs('pg'), '--json'], env);
    assert.equal(json.code, 3);
    assert.equal(jsonError(json.stderr).code, 'AUTH_INVALID_TOKEN');
    assert.equal(json.stdout, '', 'nothing on stdout on failure');
  });

  test('an unknown connection: exit 4 with a hint', async () => {
    const human = await runHoop(connectArgs('no-such-connection'), d!.adminEnv());
    assert.equal(human.code, 4, human.stderr);
    assertHumanError(human.stderr, /no-such-connection/);
    const json = await runHoop([...connectArgs('no-such-connection'), '--json'], d!.adminEnv());
    assert.equal(json.code, 4);
    assert.equal(jsonError(json.stderr).code, 'CONNECTION_NOT_FOUND');
  });

  test("the connection's agent is offline: exit 5 with a hint", async () => {
    const human = await runHoop(connectArgs('offline'), d!.adminEnv());
    assert.equal(human.code, 5, human.stderr);
    assertHumanError(human.stderr, /sleepy/);
    assert.match(human.stderr, /hint: .*agent start/);
    const json = await runHoop([...connectArgs('offline'), '--json'], d!.adminEnv());
    assert.equal(json.code, 5);
    assert.equal(jsonError(json.stderr).code, 'AGENT_OFFLINE');
  });

  test('the broker is unreachable: exit 6 with a hint', async () => {
    const port = await closedPort();
    const env = d!.adminEnv({ HOOP_BROKER_URL: `http://127.0.0.1:${port}` });
    const human = await runHoop(connectArgs('pg'), env);
    assert.equal(human.code, 6, human.stderr);
    assertHumanError(human.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    const json = await runHoop([...connectArgs('pg'), '--json'], env);
    assert.equal(json.code, 6);
    assert.equal(jsonError(json.stderr).code, 'BROKER_UNREACHABLE');
  });

  test('usage errors: exit 2', async () => {
    const missing = await runHoop(['connect'], d!.adminEnv());
    assert.equal(missing.code, 2, missing.stderr);
    const badPort = await runHoop(['connect', 'pg', '--port', 'not-a-port'], d!.adminEnv());
    assert.equal(badPort.code, 2, badPort.stderr);
  });

  test('the agent goes offline after hoop connect started: psql gets a FATAL naming the agent', async () => {
    const { agent: fragile } = await d!.addAgent('fragile');
    await d!.addConnection('fragile-pg', { agent: 'fragile', target });
    const conn = await d!.connect('fragile-pg');
    assert.equal(await psqlValue(conn.url, 'select 1'), '1');

    await fragile.kill();
    await waitFor(async () => !(await d!.agentOnline('fragile')), {
      timeoutMs: 10_000,
      what: 'the broker to see agent fragile offline',
    });
    const result = await runPsql(conn.url, 'select 1');
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /FATAL: .*agent fragile/);
    assert.match(result.stderr, /AGENT_OFFLINE/);
    assert.match(result.stderr, /HINT: .*agent start/);
    // hoop connect tells its own user too, and keeps serving.
    await waitFor(() => conn.refusals().some((r) => r.error.code === 'AGENT_OFFLINE'), {
      timeoutMs: 5_000,
      what: 'hoop connect to report the refused client on stderr',
      details: () => conn.process.describe(),
    });
    assert.ok(conn.process.running);

    await fragile.start();
    assert.equal(await psqlValue(conn.url, "select 'back'"), 'back');
  });

  test('an env:NAME credential the agent does not have: FATAL SECRET_UNAVAILABLE', async () => {
    await d!.addConnection('no-secret', {
      agent: 'edge',
      target,
      password: { ref: 'env:HOOP_E2E_NOBODY_SET_THIS' },
    });
    const conn = await d!.connect('no-secret');
    const result = await runPsql(conn.url, 'select 1');
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /FATAL: .*HOOP_E2E_NOBODY_SET_THIS/);
    assert.match(result.stderr, /SECRET_UNAVAILABLE/);
  });

  test('a target nobody listens on: psql gets a FATAL that names the target', async () => {
    const port = await closedPort();
    await d!.addConnection('nowhere', { agent: 'edge', target: { ...target, port } });
    const conn = await d!.connect('nowhere');
    const result = await runPsql(conn.url, 'select 1');
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`FATAL: +hoop: could not reach target 127\\.0\\.0\\.1:${port}`),
    );
  });
});
