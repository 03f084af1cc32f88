/**
 * Grants with real parts: a broker (PGlite store) with its native Postgres endpoint, a real agent
 * with the Postgres engine, and the machine's PostgreSQL as the target. Grants are minted over
 * the API, used with `pg` (password = grant) and the tunnel client, revoked and left to expire;
 * every kind of bad grant is refused with a stable code, never logged, and leaves the broker
 * working.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLogger, FakeClock, HoopError, type Logger, TunnelClient } from '@hoop/shared';
import { eq, sql } from 'drizzle-orm';
import pg from 'pg';
import WebSocket from 'ws';
import type { Broker } from '../broker.js';
import {
  auditEvents,
  connections,
  grants as grantsTable,
  sessions as sessionsTable,
} from '../store/schema.js';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '../testing/index.js';
import { GrantService } from './service.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const payloadOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
const headerOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Minted {
  id: string;
  grant: string;
  expiresAt: string;
  ttlSeconds: number;
  capped: boolean;
}

describe('grants (broker + agent + PostgreSQL, in process)', () => {
  let t: TestBroker;
  let broker: Broker;
  let adminToken: string;
  let userToken: string;
  let pgPort: number;
  const logLines: string[] = [];
  const secrets: string[] = [];
  const logger: Logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (line) => logLines.push(line),
  });

  const api: TestBroker['request'] = (method, path, token, body) =>
    t.request(method, path, token, body);

  async function mint(
    connection: string,
    extra: Record<string, unknown> = {},
    token = adminToken,
  ): Promise<Minted> {
    const res = await api('POST', '/api/v1/grants', token, { connection, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const minted = res.body as unknown as Minted;
    secrets.push(minted.grant);
    return minted;
  }

  /** The status and error code of a /v1/tunnel upgrade with this bearer. */
  function upgrade(token: string): Promise<{ status: number; code: string | undefined }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${broker.url.replace('http', 'ws')}/v1/tunnel`, {
        headers: { authorization: `Bearer ${token}` },
      });
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            error?: { code: string };
          };
          resolve({ status: res.statusCode ?? 0, code: body.error?.code });
        });
      });
      ws.on('open', () => {
        ws.close();
        resolve({ status: 101, code: undefined });
      });
      ws.on('error', reject);
    });
  }

  const pgClient = (password: string, user = 'local-pg') =>
    new pg.Client({
      host: '127.0.0.1',
      port: pgPort,
      user,
      password,
      database: 'test',
      ssl: false,
    });

  /** A second GrantService over the broker's store: same keys, own clock or claims. */
  function forge(options: { clock?: FakeClock; issuer?: string; audience?: string } = {}) {
    const ctx = broker.store.context;
    return new GrantService({
      ctx: options.clock === undefined ? ctx : { ...ctx, clock: options.clock },
      audit: async () => {},
      ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
      ...(options.audience === undefined ? {} : { audience: options.audience }),
    });
  }

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-grants-', pgListen: true, logger });
    ({ broker, adminToken } = t);
    secrets.push(adminToken);
    pgPort = broker.pgPort as number;
    await t.startAgent('near-db');
    for (const name of ['local-pg', 'other-pg']) {
      await addLocalPgConnection(broker, name, 'near-db');
    }
    await broker.store.context.db
      .update(connections)
      .set({ maxGrantTtlSeconds: 60 })
      .where(eq(connections.name, 'other-pg'));
    const bob = await broker.store.createUser({ name: 'bob', role: 'user' });
    userToken = await broker.store.createUserToken(bob.id, 'test');
    secrets.push(userToken);
  });

  after(async () => {
    await t.close();
    // Nothing the test minted or authenticated with was ever logged.
    const all = logLines.join('\n');
    for (const secret of secrets) {
      assert.ok(!all.includes(secret), 'a token or grant appeared in the logs');
      const signature = secret.split('.')[2] ?? '';
      if (signature.length > 20) assert.ok(!all.includes(signature), 'a signature was logged');
    }
  });

  it('publishes its Ed25519 public keys (and no private half) at /.well-known/jwks.json', async () => {
    const res = await api('GET', '/.well-known/jwks.json', undefined);
    assert.equal(res.status, 200);
    const keys = res.body['keys'] as Record<string, unknown>[];
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.['kty'], 'OKP');
    assert.equal(keys[0]?.['crv'], 'Ed25519');
    assert.equal(keys[0]?.['alg'], 'EdDSA');
    assert.equal(typeof keys[0]?.['kid'], 'string');
    assert.equal(keys[0]?.['d'], undefined);
  });

  it('mints a grant with the documented claims and records grant-minted', async () => {
    const minted = await mint('local-pg', { ttl: '10m', reason: 'debug ticket 42' });
    assert.deepEqual(Object.keys(minted).slice(0, 3), ['id', 'grant', 'expiresAt']);
    const header = headerOf(minted.grant);
    assert.equal(header['alg'], 'EdDSA');
    assert.equal(header['typ'], 'hoop-grant+jwt');
    const claims = payloadOf(minted.grant);
    assert.equal(claims['jti'], minted.id);
    assert.equal(claims['conn'], 'local-pg');
    assert.deepEqual(claims['act'], ['connect']);
    assert.equal(claims['name'], 'admin');
    assert.equal(claims['reason'], 'debug ticket 42');
    assert.equal(claims['iss'], 'hoop-broker');
    assert.equal(claims['aud'], 'hoop');
    assert.equal(typeof claims['sub'], 'string');
    assert.equal((claims['exp'] as number) - (claims['iat'] as number), 600);
    assert.equal(new Date(minted.expiresAt).getTime(), (claims['exp'] as number) * 1000);
    const events = await broker.store.context.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.type, 'grant-minted'));
    const mine = events.find((e) => (e.data as { subject?: string }).subject === minted.id);
    assert.ok(mine, 'grant-minted recorded');
    assert.ok(!JSON.stringify(mine.data).includes(minted.grant));
  });

  it('caps the lifetime by the connection and refuses bad requests', async () => {
    const capped = await mint('other-pg', { ttl: '2h' });
    assert.equal(capped.ttlSeconds, 60);
    assert.equal(capped.capped, true);
    const defaulted = await mint('local-pg');
    assert.equal(defaulted.ttlSeconds, 600);
    const cases: [unknown, number, string][] = [
      [{ connection: 'nope' }, 404, 'CONNECTION_NOT_FOUND'],
      [{ connection: 'local-pg', ttl: 'soon' }, 400, 'INVALID_REQUEST'],
      [{ connection: 'local-pg', ttl: -5 }, 400, 'INVALID_REQUEST'],
      [{ connection: 'local-pg', actions: ['root'] }, 400, 'INVALID_REQUEST'],
      [{ ttl: '10m' }, 400, 'INVALID_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const res = await api('POST', '/api/v1/grants', adminToken, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.body.error?.code, code);
    }
    // A user with no access rule may not mint, and learns nothing about the connection.
    const res = await api('POST', '/api/v1/grants', userToken, { connection: 'local-pg' });
    assert.equal(res.status, 404);
    assert.equal(res.body.error?.code, 'CONNECTION_NOT_FOUND');
    assert.equal((await api('POST', '/api/v1/grants', undefined, {})).status, 401);
  });

  it('lists grants (admins all, others their own) and never returns a JWT', async () => {
    const res = await api('GET', '/api/v1/grants', adminToken);
    assert.equal(res.status, 200);
    const list = res.body as unknown as Record<string, unknown>[];
    assert.ok(list.length >= 3);
    assert.ok(list.every((g) => g['grant'] === undefined && g['status'] === 'active'));
    assert.ok(!JSON.stringify(list).includes('eyJ'));
    const mine = await api('GET', '/api/v1/grants', userToken);
    assert.deepEqual(mine.body, []);
  });

  it('runs a pg session on a grant, and revoking it ends the live session within seconds', async () => {
    const minted = await mint('local-pg', { ttl: '5m', reason: 'e2e' });
    const c = pgClient(minted.grant);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await c.connect();
    const { rows } = await c.query('select current_user as who, $1::int + 1 as n', [41]);
    assert.deepEqual(rows, [{ who: 'postgres', n: 42 }]);

    // Someone else may not revoke it (and cannot tell it exists).
    const denied = await api('DELETE', `/api/v1/grants/${minted.id}`, userToken);
    assert.equal(denied.status, 404);

    const started = Date.now();
    const revoked = await api('DELETE', `/api/v1/grants/${minted.id}`, adminToken);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body['status'], 'revoked');
    assert.equal(revoked.body['sessionsEnded'], 1);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    await assert.rejects(c.query('select 1'));
    await ended;
    assert.ok(Date.now() - started < 5_000, 'the session ended within seconds');
    await c.end().catch(() => {});

    // Replaying the revoked grant is refused everywhere.
    assert.deepEqual(await upgrade(minted.grant), { status: 401, code: 'GRANT_REVOKED' });
    await assert.rejects(
      pgClient(minted.grant).connect(),
      (e: { code?: string; message?: string }) => {
        assert.equal(e.code, '28P01');
        assert.match(String(e.message), /GRANT_REVOKED/);
        return true;
      },
    );
    const events = await broker.store.context.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.type, 'grant-revoked'));
    assert.ok(events.some((e) => (e.data as { subject?: string }).subject === minted.id));
  });

  it('ends a live session when its 2-second grant expires', async () => {
    const minted = await mint('local-pg', { ttl: 2 });
    const c = pgClient(minted.grant);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await c.connect();
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    const deadline = new Date(minted.expiresAt).getTime();
    await Promise.race([ended, sleep(deadline - Date.now() + 5_000)]);
    assert.ok(Date.now() >= deadline - 50, 'not before the grant expired');
    assert.ok(Date.now() < deadline + 5_000, 'ended within seconds of expiry');
    await assert.rejects(c.query('select 1'));
    const expiredNote = errors.map((e) => e.message).join(' | ');
    // Today the client sees "Connection terminated unexpectedly"; once the Postgres engine turns
    // the abort reason into a FATAL, it sees the GRANT_EXPIRED message.
    if (expiredNote !== '') assert.match(expiredNote, /expired|terminat|Connection/i);
    await c.end().catch(() => {});
    // The session's end is stored after it closes (off the relay's path): wait for it.
    let rows = await broker.store.listSessions({ limit: 5 });
    for (let i = 0; i < 100 && !rows.some((s) => s.errorCode === 'GRANT_EXPIRED'); i++) {
      await sleep(50);
      rows = await broker.store.listSessions({ limit: 5 });
    }
    assert.ok(
      rows.some((s) => s.errorCode === 'GRANT_EXPIRED'),
      JSON.stringify(rows),
    );
  });

  it('lets a grant open only its connection over the tunnel, with no login', async () => {
    const minted = await mint('local-pg');
    const client = new TunnelClient({ brokerUrl: broker.url, token: minted.grant, logger });
    try {
      await assert.rejects(
        client.open({ t: 'open', connection: 'other-pg' }),
        (e: unknown) => e instanceof HoopError && e.code === 'GRANT_WRONG_CONNECTION',
      );
      const { stream, session } = await client.open({ t: 'open', connection: 'local-pg' });
      assert.equal(typeof session, 'string');
      stream.destroy();
    } finally {
      client.close();
    }
    const current = await api('GET', '/api/v1/grants/current', minted.grant);
    assert.equal(current.status, 200);
    assert.equal(current.body['connection'], 'local-pg');
    assert.equal(current.body['agentOnline'], true);
    assert.equal(current.body['grant'], undefined);
    // A grant cannot manage grants.
    assert.equal((await api('GET', '/api/v1/grants', minted.grant)).status, 403);
  });

  it('runs token sessions on a broker-minted session grant', async () => {
    const client = new TunnelClient({ brokerUrl: broker.url, token: adminToken, logger });
    try {
      const { stream } = await client.open({ t: 'open', connection: 'other-pg' });
      stream.destroy();
    } finally {
      client.close();
    }
    // The grant row is stored beside the session, off the open's critical path: wait for it.
    let rows: (typeof grantsTable.$inferSelect)[] = [];
    for (let i = 0; i < 100 && !rows.some((r) => r.connectionName === 'other-pg'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      rows = await broker.store.context.db
        .select()
        .from(grantsTable)
        .where(eq(grantsTable.via, 'session'));
    }
    assert.ok(rows.some((r) => r.connectionName === 'other-pg'));
    // Session grants are capped like any other (other-pg: 60 s).
    const g = rows.find((r) => r.connectionName === 'other-pg');
    assert.ok(g !== undefined && g.expiresAt.getTime() - g.issuedAt.getTime() <= 60_000);
  });

  it('closes a session whose grant the broker cannot record, and opens the next one', async () => {
    const db = broker.store.context.db;
    // A connection of its own: no earlier session grant of the admin's on it to share.
    await addLocalPgConnection(broker, 'record-pg', 'near-db');
    // A real store failure: the grants table is gone while the session opens.
    await db.execute(sql`alter table grants rename to grants_away`);
    const client = new TunnelClient({ brokerUrl: broker.url, token: adminToken, logger });
    try {
      const ended = await client.open({ t: 'open', connection: 'record-pg' }).then(
        ({ stream }) =>
          new Promise<unknown>((resolve) => {
            stream.on('error', resolve);
            stream.on('close', () => resolve(undefined));
            stream.resume();
          }),
        (err: unknown) => err,
      );
      assert.ok(ended instanceof HoopError, `expected the session to fail, got ${ended}`);
      assert.equal(ended.code, 'INTERNAL');
      assert.match(ended.message, /could not record the grant of this session/);
      await db.execute(sql`alter table grants_away rename to grants`);
      // The grant that could not be stored is not shared: the next session gets its own.
      const { stream } = await client.open({ t: 'open', connection: 'record-pg' });
      stream.destroy();
    } finally {
      await db.execute(sql`alter table if exists grants_away rename to grants`);
      client.close();
    }
  });

  it('shares a session grant among the sessions one user opens on one connection in a short while', async () => {
    const clock = new FakeClock(Date.now());
    const service = forge({ clock });
    const alice = { userId: 'user-alice', name: 'alice' };
    const local = { name: 'local-pg', tags: [], maxGrantTtlSeconds: null };
    const first = await service.mintSession(alice, local);
    const again = await service.mintSession(alice, local);
    assert.equal(again.id, first.id);
    assert.equal(again.grant, first.grant);
    // Stored once, however many sessions share it.
    await Promise.all([first.record(), again.record(), again.record()]);
    const rows = await broker.store.context.db
      .select()
      .from(grantsTable)
      .where(eq(grantsTable.id, first.id));
    assert.equal(rows.length, 1);
    // Another user, another connection, another cap: a grant of their own.
    const bobs = await service.mintSession({ userId: 'user-bob', name: 'bob' }, local);
    const other = await service.mintSession(alice, { ...local, name: 'other-pg' });
    const capped = await service.mintSession(alice, { ...local, maxGrantTtlSeconds: 600 });
    assert.equal(new Set([first.id, bobs.id, other.id, capped.id]).size, 4);
    // Shared for SESSION_GRANT_REUSE_MS (30 s) at most, then a new one.
    clock.advance(29_000);
    assert.equal((await service.mintSession(alice, local)).id, first.id);
    clock.advance(1_000);
    const later = await service.mintSession(alice, local);
    assert.notEqual(later.id, first.id);
    // At most a tenth of the grant's lifetime: a 60 s grant is shared for 6 s.
    const short = await service.mintSession(alice, { ...local, maxGrantTtlSeconds: 60 });
    clock.advance(5_000);
    assert.equal(
      (await service.mintSession(alice, { ...local, maxGrantTtlSeconds: 60 })).id,
      short.id,
    );
    clock.advance(1_000);
    assert.notEqual(
      (await service.mintSession(alice, { ...local, maxGrantTtlSeconds: 60 })).id,
      short.id,
    );
    // A revoked grant is never handed out again.
    await later.record();
    await service.revoke(later.id, { userId: 'admin', name: 'admin', role: 'admin' });
    assert.notEqual((await service.mintSession(alice, local)).id, later.id);
  });

  it('never shares a session grant that could not be stored, nor on a store other brokers share', async () => {
    const ctx = broker.store.context;
    const alice = { userId: 'user-alice-2', name: 'alice' };
    const local = { name: 'local-pg', tags: [], maxGrantTtlSeconds: null };
    const shared = new GrantService({ ctx: { ...ctx, exclusive: false }, audit: async () => {} });
    const a = await shared.mintSession(alice, local);
    const b = await shared.mintSession(alice, local);
    assert.notEqual(a.id, b.id);

    const service = forge();
    await ctx.db.execute(sql`alter table grants rename to grants_away`);
    try {
      const failed = await service.mintSession(alice, local);
      await assert.rejects(failed.record());
    } finally {
      await ctx.db.execute(sql`alter table grants_away rename to grants`);
    }
    const next = await service.mintSession(alice, local);
    await next.record();
    const again = await service.mintSession(alice, local);
    assert.equal(again.id, next.id);
  });

  it('ends every session sharing a session grant when it is revoked', async () => {
    const client = new TunnelClient({ brokerUrl: broker.url, token: adminToken, logger });
    await addLocalPgConnection(broker, 'shared-pg', 'near-db');
    try {
      const opened = [
        await client.open({ t: 'open', connection: 'shared-pg' }),
        await client.open({ t: 'open', connection: 'shared-pg' }),
      ];
      let rows: (typeof grantsTable.$inferSelect)[] = [];
      for (let i = 0; i < 100 && rows.length === 0; i++) {
        if (i > 0) await sleep(50);
        rows = await broker.store.context.db
          .select()
          .from(grantsTable)
          .where(eq(grantsTable.connectionName, 'shared-pg'));
      }
      assert.equal(rows.length, 1, 'both sessions run on one session grant');
      const ended = opened.map(
        ({ stream }) =>
          new Promise<unknown>((resolve) => {
            stream.on('error', resolve);
            stream.on('close', () => resolve(undefined));
            stream.resume();
          }),
      );
      const res = await api('DELETE', `/api/v1/grants/${rows[0]?.id}`, adminToken);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body['sessionsEnded'], 2);
      for (const err of await Promise.all(ended)) {
        assert.ok(err instanceof HoopError, `expected the session to end with an error: ${err}`);
        assert.equal(err.code, 'GRANT_REVOKED');
      }
    } finally {
      client.close();
    }
  });

  it('refuses an open whose session row cannot be stored, though the agent had opened it', async () => {
    const db = broker.store.context.db;
    // The agent opens the session while the broker stores its row; the client must hear
    // open-error (and the agent close), never open-ok, when the row cannot be stored.
    await db.execute(sql`alter table sessions rename to sessions_away`);
    const client = new TunnelClient({ brokerUrl: broker.url, token: adminToken, logger });
    try {
      const refused = await client.open({ t: 'open', connection: 'other-pg' }).then(
        ({ stream }) => {
          stream.destroy();
          return undefined;
        },
        (err: unknown) => err,
      );
      assert.ok(refused instanceof HoopError, `expected the open to fail, got ${refused}`);
      await db.execute(sql`alter table sessions_away rename to sessions`);
      const { stream, session } = await client.open({ t: 'open', connection: 'other-pg' });
      const [row] = await db.select().from(sessionsTable).where(eq(sessionsTable.id, session));
      assert.equal(row?.status, 'open');
      stream.destroy();
    } finally {
      await db.execute(sql`alter table if exists sessions_away rename to sessions`);
      client.close();
    }
  });

  it('refuses every kind of bad grant with a stable code, and keeps working', async () => {
    const good = await mint('local-pg');
    const kid = headerOf(good.grant)['kid'] as string;
    const [h, p] = good.grant.split('.') as [string, string];
    const intruder = generateKeyPairSync('ed25519');
    const signWith = (header: unknown, payload: unknown) => {
      const input = `${b64(header)}.${b64(payload)}`;
      return `${input}.${sign(null, Buffer.from(input), intruder.privateKey).toString('base64url')}`;
    };
    const claims = payloadOf(good.grant);
    const jwks = (await api('GET', '/.well-known/jwks.json', undefined)).body['keys'] as {
      x: string;
    }[];
    const hsInput = `${b64({ alg: 'HS256', kid, typ: 'hoop-grant+jwt' })}.${p}`;
    const hs256 = `${hsInput}.${createHmac('sha256', Buffer.from(jwks[0]?.x ?? '', 'base64url'))
      .update(hsInput)
      .digest('base64url')}`;
    const past = new FakeClock(Date.now() - 3_600_000);
    const expired = await forge({ clock: past }).mint({
      subject: { userId: claims['sub'] as string, name: 'admin' },
      connection: 'local-pg',
      ttlSeconds: 60,
      via: 'token',
    });
    const wrongIss = await forge({ issuer: 'https://evil.example' }).mint({
      subject: { userId: claims['sub'] as string, name: 'admin' },
      connection: 'local-pg',
      via: 'token',
    });
    const wrongAud = await forge({ audience: 'someone-else' }).mint({
      subject: { userId: claims['sub'] as string, name: 'admin' },
      connection: 'local-pg',
      via: 'token',
    });
    const bad: [string, string, number, string][] = [
      ['forged signature', signWith(headerOf(good.grant), claims), 401, 'GRANT_INVALID'],
      [
        'altered payload',
        `${h}.${b64({ ...claims, conn: 'other-pg' })}.${good.grant.split('.')[2]}`,
        401,
        'GRANT_INVALID',
      ],
      ['expired', expired.grant, 401, 'GRANT_EXPIRED'],
      ['wrong issuer', wrongIss.grant, 401, 'GRANT_INVALID'],
      ['wrong audience', wrongAud.grant, 401, 'GRANT_INVALID'],
      [
        'alg none',
        `${b64({ alg: 'none', kid, typ: 'hoop-grant+jwt' })}.${p}.`,
        401,
        'GRANT_INVALID',
      ],
      ['HS256 with the public key', hs256, 401, 'GRANT_INVALID'],
      ['oversized', `eyJ${'A'.repeat(9 * 1024)}.${p}.x`, 401, 'AUTH_INVALID_TOKEN'],
      ['garbage JWT', 'eyJnotjson.eyJ.abc', 401, 'GRANT_INVALID'],
      ['garbage', 'not-a-token-at-all', 401, 'AUTH_INVALID_TOKEN'],
    ];
    for (const [what, token, status, code] of bad) {
      secrets.push(token);
      assert.deepEqual(await upgrade(token), { status, code }, `tunnel: ${what}`);
      const res = await api('GET', '/api/v1/grants/current', token);
      assert.equal(res.status, status, `api: ${what}`);
      assert.equal(res.body.error?.code, code, `api: ${what}`);
      assert.ok(!JSON.stringify(res.body).includes(token.slice(-20)), `api echoes ${what}`);
      // The broker is unaffected: a good grant still works.
      assert.equal((await api('GET', '/api/v1/grants/current', good.grant)).status, 200);
    }
    assert.deepEqual(await upgrade(good.grant), { status: 101, code: undefined });
    const c = pgClient(good.grant);
    await c.connect();
    await c.end();
  });

  it('rotates keys: new grants use the new kid, old grants keep working until they expire', async () => {
    const before = await mint('local-pg');
    const rotated = await api('POST', '/api/v1/grants/keys/rotate', adminToken);
    assert.equal(rotated.status, 201);
    const kid = rotated.body['kid'] as string;
    assert.notEqual(kid, headerOf(before.grant)['kid']);
    const after = await mint('local-pg');
    assert.equal(headerOf(after.grant)['kid'], kid);
    const keys = (await api('GET', '/.well-known/jwks.json', undefined)).body['keys'] as {
      kid: string;
    }[];
    assert.ok(keys.some((k) => k.kid === kid));
    assert.ok(keys.some((k) => k.kid === headerOf(before.grant)['kid']));
    // The agent learns the new kid from the JWKS on its own; both grants open sessions.
    for (const g of [before, after]) {
      const c = pgClient(g.grant);
      await c.connect();
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
      await c.end();
    }
    assert.equal((await api('POST', '/api/v1/grants/keys/rotate', userToken)).status, 403);
  });
});
