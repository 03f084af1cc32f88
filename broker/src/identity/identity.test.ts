/**
 * Identities end to end in one process: a real broker (PGlite, real HTTP), a test CI issuer
 * (jose keys, discovery + JWKS over HTTP), an agent with an echo engine for live sessions.
 * Covers local users, service accounts and API keys, access rules, CI exchange and every bad
 * input the issue lists; each rejection has a stable code, leaks nothing, and the broker stays up.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLogger, TunnelClient, type TunnelStream } from '@hoop/shared';
import { generateKeyPair, SignJWT } from 'jose';
import type { Broker } from '../broker.js';
import { auditEvents } from '../store/schema.js';
import {
  addEchoConnection,
  echoEngines,
  type ApiReply as Reply,
  startTestBroker,
  type TestBroker,
} from '../testing/index.js';
import { startTestIssuer, type TestIssuer } from './test-issuer.js';

describe('identities (users, service accounts, API keys, access rules, CI trust)', () => {
  let t: TestBroker;
  let broker: Broker;
  let issuer: TestIssuer;
  const logLines: string[] = [];
  const secrets: string[] = [];

  const call = (method: string, path: string, token?: string, body?: unknown) =>
    t.request(method, path, token, body);
  const admin = (method: string, path: string, body?: unknown) => t.api(method, path, body);

  function assertRejected(reply: Reply, status: number, code: string, leaked?: string): void {
    assert.equal(reply.status, status, reply.text);
    assert.equal(reply.body.error?.code, code, reply.text);
    if (leaked !== undefined) assert.ok(!reply.text.includes(leaked), 'the token leaked');
  }

  async function openEcho(
    token: string,
    connection: string,
  ): Promise<{ client: TunnelClient; stream: TunnelStream }> {
    const client = new TunnelClient({
      brokerUrl: broker.url,
      token,
      logger: createLogger({ write: () => {} }),
    });
    const { stream } = await client.open({ t: 'open', connection });
    return { client, stream };
  }

  async function echoes(stream: TunnelStream): Promise<boolean> {
    const got = new Promise<boolean>((resolve) => {
      stream.once('data', () => resolve(true));
      stream.once('close', () => resolve(false));
      stream.once('error', () => resolve(false));
    });
    stream.write('ping');
    return got;
  }

  function closed(stream: TunnelStream, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      stream.once('close', done);
      stream.once('error', done);
    });
  }

  before(async () => {
    issuer = await startTestIssuer();
    t = await startTestBroker({
      prefix: 'hoop-identity-',
      logger: createLogger({ level: 'debug', format: 'json', write: (l) => logLines.push(l) }),
    });
    broker = t.broker;
    secrets.push(t.adminToken);
    await t.startAgent('echo-agent', {
      logger: createLogger({ write: () => {} }),
      engines: echoEngines(),
    });
    for (const name of ['orders', 'billing', 'tagged']) {
      await addEchoConnection(broker, name, 'echo-agent');
    }
  });

  after(async () => {
    await t.close();
    await issuer.close();
  });

  describe('local users', () => {
    const password = 'correct horse battery staple';
    let token: string;

    it('an admin creates a user; the password logs in and yields an expiring token', async () => {
      const created = await admin('POST', '/api/v1/users', {
        name: 'alice',
        groups: ['dba'],
        password,
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body['login'], 'password');
      assert.ok(!created.text.includes('scrypt'), 'no hash in responses');
      const login = await call('POST', '/api/v1/auth/login', undefined, {
        user: 'alice',
        password,
      });
      assert.equal(login.status, 200, login.text);
      token = login.body['token'] as string;
      secrets.push(token, password);
      assert.ok(Date.parse(login.body['expiresAt'] as string) > Date.now() + 11 * 3600_000);
      const me = await call('GET', '/api/v1/whoami', token);
      assert.equal(me.body['name'], 'alice');
      assert.equal(me.body['role'], 'user');
      // and a non-admin cannot administer
      assertRejected(await call('GET', '/api/v1/users', token), 403, 'AUTH_FORBIDDEN');
    });

    it('wrong password, unknown user and missing fields: the same 401 that names no part', async () => {
      const wrong = await call('POST', '/api/v1/auth/login', undefined, {
        user: 'alice',
        password: 'not the password',
      });
      const unknown = await call('POST', '/api/v1/auth/login', undefined, {
        user: 'nobody',
        password,
      });
      const empty = await call('POST', '/api/v1/auth/login', undefined, {});
      for (const reply of [wrong, unknown, empty]) {
        assertRejected(reply, 401, 'AUTH_INVALID_TOKEN', 'not the password');
        assert.equal(reply.body.error?.message, wrong.body.error?.message);
      }
    });

    it('refuses weak passwords and duplicate names', async () => {
      assertRejected(
        await admin('POST', '/api/v1/users', { name: 'bob', password: 'short' }),
        400,
        'INVALID_REQUEST',
        'short',
      );
      assertRejected(
        await admin('POST', '/api/v1/users', { name: 'alice', password }),
        409,
        'ALREADY_EXISTS',
      );
    });

    it('access rules decide what a user sees and may open', async () => {
      let list = await call('GET', '/api/v1/connections', token);
      assert.deepEqual(list.body, []);
      assertRejected(
        await call('GET', '/api/v1/connections/orders', token),
        404,
        'CONNECTION_NOT_FOUND',
      );
      await assert.rejects(openEcho(token, 'orders'), /CONNECTION_NOT_FOUND|no connection/);

      const rule = await admin('POST', '/api/v1/access/allow', {
        group: 'dba',
        connection: 'orders',
        actions: ['connect', 'exec'],
      });
      assert.equal(rule.status, 201, rule.text);
      assertRejected(
        await admin('POST', '/api/v1/access/allow', {
          group: 'dba',
          connection: 'orders',
          actions: ['admin'],
        }),
        400,
        'INVALID_REQUEST',
      );
      list = await call('GET', '/api/v1/connections', token);
      assert.deepEqual(
        (list.body as unknown as { name: string }[]).map((c) => c.name),
        ['orders'],
      );
      assert.equal((await call('GET', '/api/v1/connections/orders', token)).status, 200);
      assertRejected(
        await call('GET', '/api/v1/connections/billing', token),
        404,
        'CONNECTION_NOT_FOUND',
      );

      // by tag
      const { setConnectionTags } = await import('../store/access.js');
      await setConnectionTags(broker.store.context, 'tagged', ['env:prod']);
      await admin('POST', '/api/v1/access/allow', {
        group: 'dba',
        tag: 'env:prod',
        actions: 'connect',
      });
      list = await call('GET', '/api/v1/connections', token);
      assert.deepEqual((list.body as unknown as { name: string }[]).map((c) => c.name).sort(), [
        'orders',
        'tagged',
      ]);
      const { client, stream } = await openEcho(token, 'tagged');
      assert.equal(await echoes(stream), true);
      client.close();

      const revoked = await admin('POST', '/api/v1/access/revoke', {
        group: 'dba',
        tag: 'env:prod',
      });
      assert.equal(revoked.status, 200, revoked.text);
      await assert.rejects(openEcho(token, 'tagged'), /CONNECTION_NOT_FOUND|no connection/);
      const rules = await admin('GET', '/api/v1/access');
      assert.equal((rules.body as unknown as unknown[]).length, 1);
    });

    it('disabling a user closes their live session within seconds and stops their token', async () => {
      const { client, stream } = await openEcho(token, 'orders');
      try {
        assert.equal(await echoes(stream), true);
        const ending = closed(stream, 5_000);
        const disabled = await admin('POST', '/api/v1/users/alice/disable');
        assert.equal(disabled.status, 200, disabled.text);
        assert.equal(disabled.body['sessionsEnded'], 1);
        assert.equal(await ending, true, 'the live session closed');
      } finally {
        client.close();
      }
      assertRejected(await call('GET', '/api/v1/whoami', token), 401, 'AUTH_INVALID_TOKEN', token);
      assertRejected(
        await call('POST', '/api/v1/auth/login', undefined, { user: 'alice', password }),
        401,
        'AUTH_INVALID_TOKEN',
      );
      await admin('POST', '/api/v1/users/alice/enable');
      assert.equal((await call('GET', '/api/v1/whoami', token)).status, 200);
    });
  });

  describe('service accounts and API keys', () => {
    let keyId: string;
    let key: string;

    it('creates a service account and an expiring API key shown once', async () => {
      const sa = await admin('POST', '/api/v1/serviceaccounts', {
        name: 'deployer',
        groups: ['ci'],
      });
      assert.equal(sa.status, 201, sa.text);
      assert.equal(sa.body['kind'], 'service');
      const created = await admin('POST', '/api/v1/apikeys', {
        serviceAccount: 'deployer',
        expires: '30d',
      });
      assert.equal(created.status, 201, created.text);
      keyId = created.body['id'] as string;
      key = created.body['key'] as string;
      secrets.push(key);
      assert.match(key, /^hoop_sak_/);
      const days = (Date.parse(created.body['expiresAt'] as string) - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days < 30.1);
      assertRejected(
        await admin('POST', '/api/v1/apikeys', { serviceAccount: 'alice' }),
        404,
        'NOT_FOUND',
      );
      assertRejected(
        await admin('POST', '/api/v1/apikeys', { serviceAccount: 'deployer', expires: 'forever' }),
        400,
        'INVALID_REQUEST',
      );
    });

    it('the key works as a bearer, records its last use, and is never listed', async () => {
      const me = await call('GET', '/api/v1/whoami', key);
      assert.equal(me.body['name'], 'deployer');
      const list = await admin('GET', '/api/v1/apikeys?serviceaccount=deployer');
      assert.ok(!list.text.includes(key));
      const [info] = list.body as unknown as { id: string; lastUsedAt: string | null }[];
      assert.equal(info?.id, keyId);
      assert.notEqual(info?.lastUsedAt, null);
    });

    it('deleting the key closes its live session and the key stops working', async () => {
      await admin('POST', '/api/v1/access/allow', {
        group: 'ci',
        connection: 'billing',
        actions: 'connect',
      });
      const { client, stream } = await openEcho(key, 'billing');
      try {
        assert.equal(await echoes(stream), true);
        const ending = closed(stream, 5_000);
        const deleted = await admin('DELETE', `/api/v1/apikeys/${keyId}`);
        assert.equal(deleted.status, 200, deleted.text);
        assert.equal(await ending, true);
        // The tunnel the key opened is still up for a moment, but opens nothing any more: it was
        // authorized by the key, and the broker does not take its word for it after the delete.
        await assert.rejects(
          client.open({ t: 'open', connection: 'billing' }),
          (e: { code?: string }) => e.code === 'AUTH_INVALID_TOKEN',
        );
        // Then the broker closes it, and reconnecting with the key fails at the upgrade.
        await new Promise((r) => setTimeout(r, 1_500));
        await assert.rejects(
          client.open({ t: 'open', connection: 'billing' }),
          (e: { code?: string }) => e.code === 'AUTH_INVALID_TOKEN',
        );
      } finally {
        client.close();
      }
      assertRejected(await call('GET', '/api/v1/whoami', key), 401, 'AUTH_INVALID_TOKEN', key);
      assertRejected(await admin('DELETE', `/api/v1/apikeys/${keyId}`), 404, 'NOT_FOUND');
    });
  });

  describe('CI identity exchange', () => {
    const job = {
      aud: 'hoop',
      sub: 'repo:org/app:ref:refs/heads/main',
      repository: 'org/app',
      ref: 'refs/heads/main',
    };

    before(async () => {
      await admin('POST', '/api/v1/serviceaccounts', { name: 'app-ci', groups: ['app-ci'] });
      const policy = await admin('POST', '/api/v1/trust', {
        name: 'app-main',
        issuer: issuer.issuer,
        audience: 'hoop',
        subject: 'repo:org/app:*',
        claims: { repository: 'org/app', ref: 'refs/heads/*' },
        serviceAccount: 'app-ci',
      });
      assert.equal(policy.status, 201, policy.text);
    });

    it('a job token matching a trust policy acts as its service account (no stored secret)', async () => {
      const jwt = await issuer.sign(job);
      secrets.push(jwt);
      const me = await call('GET', '/api/v1/whoami', jwt);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body['name'], 'app-ci');
      // the keys are cached: a second token needs no new JWKS fetch
      const fetches = issuer.jwksFetches;
      assert.equal((await call('GET', '/api/v1/whoami', await issuer.sign(job))).status, 200);
      assert.equal(issuer.jwksFetches, fetches);
    });

    it('rejects a forged signature (another key, same kid) with 401', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await new SignJWT({ ...job })
        .setProtectedHeader({ alg: 'RS256', kid: issuer.kid })
        .setIssuer(issuer.issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      assertRejected(
        await call('GET', '/api/v1/whoami', forged),
        401,
        'AUTH_INVALID_TOKEN',
        forged,
      );
      // and a token whose payload was altered after signing
      const good = await issuer.sign(job);
      const [h, , s] = good.split('.');
      const altered = `${h}.${Buffer.from(JSON.stringify({ ...job, iss: issuer.issuer, repository: 'org/app', sub: 'repo:org/app:ref:refs/heads/evil', exp: 9e9 })).toString('base64url')}.${s}`;
      assertRejected(await call('GET', '/api/v1/whoami', altered), 401, 'AUTH_INVALID_TOKEN');
    });

    it('rejects an expired token with 401', async () => {
      const expired = await issuer.sign(job, {
        iat: Math.floor(Date.now() / 1000) - 3600,
        ttlSeconds: 600,
      });
      const reply = await call('GET', '/api/v1/whoami', expired);
      assertRejected(reply, 401, 'AUTH_INVALID_TOKEN', expired);
      assert.match(reply.body.error?.message ?? '', /expired/);
    });

    it('rejects an unknown issuer with 401 and a wrong audience with 403', async () => {
      assertRejected(
        await call(
          'GET',
          '/api/v1/whoami',
          await issuer.sign({ ...job, iss: 'https://evil.example' }),
        ),
        401,
        'AUTH_INVALID_TOKEN',
      );
      assertRejected(
        await call('GET', '/api/v1/whoami', await issuer.sign({ ...job, aud: 'someone-else' })),
        403,
        'TRUST_NO_MATCH',
      );
    });

    it('rejects alg none and HS256 signed with the public key', async () => {
      const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const claims = { ...job, iss: issuer.issuer, exp: Math.floor(Date.now() / 1000) + 300 };
      const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
      assertRejected(await call('GET', '/api/v1/whoami', none), 401, 'AUTH_INVALID_TOKEN');
      const signingInput = `${enc({ alg: 'HS256', typ: 'JWT', kid: issuer.kid })}.${enc(claims)}`;
      const hs = `${signingInput}.${createHmac('sha256', JSON.stringify(issuer.publicJwk)).update(signingInput).digest('base64url')}`;
      assertRejected(await call('GET', '/api/v1/whoami', hs), 401, 'AUTH_INVALID_TOKEN');
    });

    it('rejects an oversized token before any lookup', async () => {
      const huge = await issuer.sign({ ...job, padding: 'x'.repeat(9_000) });
      assertRejected(await call('GET', '/api/v1/whoami', huge), 401, 'AUTH_INVALID_TOKEN');
    });

    it('rejects claim mismatches with 403 TRUST_NO_MATCH', async () => {
      for (const bad of [
        { ...job, repository: 'org/other' },
        { ...job, ref: 'refs/tags/v1' },
        { ...job, sub: 'repo:org/other:ref:refs/heads/main' },
        { aud: 'hoop', sub: job.sub, ref: job.ref },
      ]) {
        assertRejected(
          await call('GET', '/api/v1/whoami', await issuer.sign(bad)),
          403,
          'TRUST_NO_MATCH',
        );
      }
    });

    it('admins list and delete trust policies; a deleted policy trusts nothing', async () => {
      const list = await admin('GET', '/api/v1/trust');
      assert.equal((list.body as unknown as { name: string }[])[0]?.name, 'app-main');
      assert.equal((await admin('DELETE', '/api/v1/trust/app-main')).status, 200);
      assertRejected(
        await call('GET', '/api/v1/whoami', await issuer.sign(job)),
        401,
        'AUTH_INVALID_TOKEN',
      );
    });
  });

  it('records logins, failures and admin changes; no token or password in logs or audit', async () => {
    const rows = await broker.store.context.db.select().from(auditEvents);
    const types = new Set(rows.map((r) => r.type));
    for (const t of ['login', 'login-failed', 'admin-change']) assert.ok(types.has(t), t);
    const changes = rows
      .filter((r) => r.type === 'admin-change')
      .map((r) => (r.data as { detail?: { change?: string } }).detail?.change);
    for (const c of [
      'user.create',
      'user.disable',
      'serviceaccount.create',
      'apikey.create',
      'apikey.delete',
      'access.allow',
      'access.revoke',
      'trust.create',
      'trust.delete',
    ]) {
      assert.ok(changes.includes(c), c);
    }
    const everything = JSON.stringify(rows) + logLines.join('\n');
    for (const secret of secrets) assert.ok(!everything.includes(secret), 'a secret leaked');
    assert.equal((await call('GET', '/api/v1/health')).status, 200);
  });
});
