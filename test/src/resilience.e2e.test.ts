/**
 * Processes dying and coming back: an agent killed with SIGKILL and started again, and a broker
 * stopped and started again on the same data dir and port while the agent and a `hoop connect`
 * keep running. Nothing is restarted by hand except the process under test: the agent reconnects
 * by itself (backoff) and `hoop connect` reopens its tunnel on the next client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Deployment } from './support/deployment.js';
import { type AgentProcess, type ConnectProcess, runHoopJson } from './support/hoop.js';
import { psqlValue, runPsql } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { waitFor, withTimeout } from './support/wait.js';

describe('agent and broker restarts', { timeout: 180_000 }, () => {
  let d: Deployment | undefined;
  let agent: AgentProcess;
  let conn: ConnectProcess;

  before(
    async () => {
      d = await Deployment.start();
      ({ agent } = await d.addAgent('edge'));
      await d.addConnection('pg', { agent: 'edge', target: machinePostgres() });
      conn = await d.connect('pg');
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
  });

  test('agent SIGKILLed and started again: sessions fail fast, then new ones work', async () => {
    assert.equal(await psqlValue(conn.url, "select 'before'"), 'before');
    const open = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
    const openErrors: Error[] = [];
    open.on('error', (err) => openErrors.push(err));
    await open.connect();
    try {
      assert.equal((await open.query('select 1 as v')).rows[0]?.v, 1);
      const killedPid = agent.pid;
      const exit = await agent.kill();
      assert.equal(exit.signal, 'SIGKILL');
      await waitFor(async () => !(await d!.agentOnline('edge')), {
        timeoutMs: 10_000,
        what: 'the broker to see the killed agent offline',
      });
      // The session that was open through the dead agent ends with an error instead of hanging.
      await assert.rejects(
        withTimeout(open.query('select 2'), 10_000, 'the orphaned query'),
        (err: Error) => !/timed out/.test(err.message),
      );

      await agent.start();
      assert.notEqual(agent.pid, killedPid);
      assert.ok(await d!.agentOnline('edge'));
      assert.equal(await psqlValue(conn.url, "select 'after'"), 'after');
      assert.ok(conn.process.running, 'hoop connect kept running through the agent restart');
    } finally {
      await open.end().catch(() => {});
    }
  });

  test('broker restarted on the same data dir and port: agent and hoop connect recover by themselves', async () => {
    const broker = d!.broker;
    assert.equal(await psqlValue(conn.url, "select 'before'"), 'before');
    const agentPid = agent.pid;
    const connectedBefore = agent.connectedCount();

    const stopped = await broker.process.stop();
    assert.equal(stopped.killed, false, 'the broker stopped on SIGTERM');
    assert.equal(stopped.code, 0, broker.process.describe());

    // While the broker is down, a client of the running hoop connect is told so by psql.
    const down = await runPsql(conn.url, 'select 1');
    assert.equal(down.code, 2, down.stderr);
    assert.match(down.stderr, /FATAL/);
    assert.match(down.stderr, /broker/i);
    assert.ok(conn.process.running, 'hoop connect survives the broker going away');

    await broker.startAgain();
    await agent.waitConnected(connectedBefore + 1, 30_000);
    assert.equal(agent.pid, agentPid, 'the same agent process reconnected');
    assert.ok(
      agent.events().some((e) => e.state === 'waiting'),
      'the agent went through its backoff state',
    );

    // The running hoop connect reopens its tunnel for the next client.
    assert.equal(await psqlValue(conn.url, "select 'after', 1 + 1"), 'after|2');
    assert.equal(conn.process.exit, undefined, 'hoop connect is still the same process');

    // The broker's state survived: same admin token, agent and connection.
    const shown = await runHoopJson<{ name: string; agentOnline: boolean }>(
      ['admin', 'connections', 'show', 'pg'],
      d!.adminEnv(),
    );
    assert.equal(shown.name, 'pg');
    assert.equal(shown.agentOnline, true);
  });
});
