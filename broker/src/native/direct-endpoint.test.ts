/**
 * The agent's direct endpoint with real parts: broker (PGlite store), a real agent with the
 * Postgres engine and its direct endpoint, the machine's PostgreSQL as the target, and `pg` as a
 * plain client connected to the agent itself — the broker authorizes and records, and relays
 * nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '@hoop/agent';
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { auditEvents } from '../store/schema.js';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '../testing/index.js';
import {
  assertCancelsOnOwnConnection,
  assertRefusesBadLogins,
} from '../testing/pg-endpoint-checks.js';

describe('agent direct endpoint', () => {
  let t: TestBroker;
  let agent: Agent;
  let port: number;

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-direct-' });
    agent = await t.startAgent('near-db', { direct: true });
    port = await agent.listenDirect();
    await addLocalPgConnection(t.broker, 'local-pg', 'near-db');
    await addLocalPgConnection(t.broker, 'guarded-pg', 'near-db');
    const policy = await t.api('PUT', '/api/v1/connections/guarded-pg/policy', {
      guardrails: { deny: [{ statements: ['drop'] }] },
      masking: { detectors: ['email'] },
    });
    assert.equal(policy.status, 200, policy.text);
  });

  after(() => t.close());

  const client = (password: string, user = 'local-pg') =>
    new pg.Client({ host: '127.0.0.1', port, user, password, database: 'test', ssl: false });

  it('serves a client on the agent, with the broker out of the data path', async () => {
    const hub = t.broker.hub;
    const c = client(t.adminToken);
    await c.connect();
    try {
      const { rows } = await c.query('select current_user as who, $1::int + 1 as n', [41]);
      assert.deepEqual(rows, [{ who: 'postgres', n: 42 }]);
      // A 1 MB result crosses no tunnel: the session's route has relayed nothing.
      const big = await c.query("select repeat('x', 1000000) as blob");
      assert.equal((big.rows[0] as { blob: string }).blob.length, 1_000_000);
      assert.equal(hub.stats.routes, 1);
    } finally {
      await c.end();
    }
    const list = await t.api('GET', '/api/v1/sessions');
    assert.equal(list.status, 200, list.text);
    const sessions = list.body as unknown as Array<Record<string, unknown>>;
    const mine = sessions.find(
      (s) =>
        s['connectionName'] === 'local-pg' && String(s['client']).startsWith('direct 127.0.0.1:'),
    );
    assert.ok(mine, JSON.stringify(sessions));
    assert.ok(Number(mine['bytesDown'] ?? 0) < 1_000_000, JSON.stringify(mine));
  });

  it('runs the policy on the agent and records the session at the broker', async () => {
    const c = client(t.adminToken, 'guarded-pg');
    await c.connect();
    let session: string | undefined;
    try {
      const masked = await c.query("select 'reach me at alice@example.com' as note");
      assert.deepEqual(masked.rows, [{ note: 'reach me at [redacted:email]' }]);
      await assert.rejects(c.query('drop table no_such_table'), (e: { code?: string }) => {
        assert.equal(e.code, '42501');
        return true;
      });
      const list = await t.api('GET', '/api/v1/sessions');
      const sessions = list.body as unknown as Array<{ id: string; connectionName: string }>;
      session = sessions.find((s) => s.connectionName === 'guarded-pg')?.id;
    } finally {
      await c.end();
    }
    assert.ok(session);
    let statements: unknown[] = [];
    for (let i = 0; i < 100 && statements.length < 2; i++) {
      statements = (
        await t.broker.store.context.db
          .select()
          .from(auditEvents)
          .where(eq(auditEvents.sessionId, session))
      ).filter((e) => e.type === 'statement');
      if (statements.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(statements.length, 2, JSON.stringify(statements));
    assert.ok(!JSON.stringify(statements).includes('alice@example.com'));
  });

  it('refuses a wrong token with 28P01 and an unknown connection with 3D000', async () => {
    await assertRefusesBadLogins(client, t.adminToken);
  });

  it('ends the session when its grant is revoked', async () => {
    const minted = await t.api('POST', '/api/v1/grants', { connection: 'local-pg', ttl: '5m' });
    assert.equal(minted.status, 201, minted.text);
    const c = client(minted.body['grant'] as string);
    c.on('error', () => {});
    await c.connect();
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    const revoked = await t.api('DELETE', `/api/v1/grants/${minted.body['id'] as string}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body['sessionsEnded'], 1);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    await assert.rejects(c.query('select 1'));
    await ended;
  });

  it('shares one tunnel among the clients of a token, and refuses a token disabled since', async () => {
    const allowed = await t.api('POST', '/api/v1/access/allow', {
      group: 'direct-users',
      connection: 'local-pg',
      actions: 'connect',
    });
    assert.equal(allowed.status, 201, allowed.text);
    const token = await t.addUser('dora', ['direct-users']);
    const hub = t.broker.hub;
    const before = hub.stats.clients;
    const clients = [client(token), client(token), client(token)];
    for (const c of clients) c.on('error', () => {});
    await Promise.all(clients.map((c) => c.connect()));
    await clients[0]?.query('select 1');
    assert.equal(hub.stats.clients, before + 1, 'one tunnel for the three clients');
    const disabled = await t.api('POST', '/api/v1/users/dora/disable');
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(disabled.body['sessionsEnded'], 3);
    await assert.rejects(client(token).connect(), (e: { code?: string }) => e.code === '28P01');
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  });

  it('serves no one under a ticket this agent did not issue', async () => {
    const tunnel = t.tunnel();
    try {
      await assert.rejects(
        tunnel.open({
          t: 'open',
          connection: 'local-pg',
          direct: randomBytes(32).toString('base64url'),
        }),
        (e: { code?: string }) => e.code === 'CONNECTION_NOT_FOUND',
      );
    } finally {
      tunnel.close();
    }
  });

  it('forwards a CancelRequest that arrives on its own connection', async () => {
    const c = client(t.adminToken);
    await c.connect();
    try {
      await assertCancelsOnOwnConnection(c, port);
    } finally {
      await c.end();
    }
  });
});
