/**
 * Just-in-time approvals with real parts: a broker (PGlite store) with its native Postgres
 * endpoint, a real agent, the machine's PostgreSQL as the target, local users in groups (a
 * requester and two approvers), and a real HTTP receiver for the review webhook. Access windows
 * are requested, approved (then used with `pg` and left to expire), rejected, refused to their
 * own requester, approved by two approvers, revoked (closing the live session) and expired on an
 * injected clock; every step is in the audit log and reaches the webhook, signed.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger, FakeClock, parsePolicy, silentLogger } from '@hoop/shared';
import { inArray } from 'drizzle-orm';
import pg from 'pg';
import type { Broker } from '../broker.js';
import { GrantService } from '../grants/service.js';
import { auditEvents } from '../store/schema.js';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '../testing/index.js';
import { ReviewService } from './service.js';
import type { ReviewView } from './view.js';
import { webhookBody } from './webhook.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(25);
  }
}
const SECRET = 'whsec-test-secret';
const dbg = process.env['HOOP_TEST_DEBUG']
  ? createLogger({ level: 'debug', format: 'json', write: (l) => process.stderr.write(`${l}\n`) })
  : silentLogger;

interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('reviews (broker + agent + PostgreSQL + webhook, in process)', () => {
  let t: TestBroker;
  let broker: Broker;
  let adminToken: string;
  let receiver: Server;
  const deliveries: Delivery[] = [];
  let failNext = 1; // the receiver answers 500 to the first delivery: the broker must retry
  const tokens: Record<string, string> = {};

  const api: TestBroker['request'] = (method, path, token, body) =>
    t.request(method, path, token, body);
  const as = (user: string) => tokens[user] as string;

  const pgClient = (password: string) =>
    new pg.Client({
      host: '127.0.0.1',
      port: broker.pgPort as number,
      user: 'db',
      password,
      database: 'test',
      ssl: false,
    });

  async function setPolicy(reviews: Record<string, unknown>): Promise<void> {
    const res = await api('PUT', '/api/v1/connections/db/policy', adminToken, { reviews });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  async function request(extra: Record<string, unknown> = {}): Promise<string> {
    const res = await api('POST', '/api/v1/grants', as('rita'), {
      connection: 'db',
      reason: 'INC-42 investigate',
      ...extra,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const review = res.body['review'] as { id: string; status: string };
    assert.equal(review.status, 'pending');
    return review.id;
  }

  before(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(500).end();
          return;
        }
        deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    t = await startTestBroker({
      prefix: 'hoop-reviews-',
      pgListen: true,
      logger: dbg,
      start: {
        reviewWebhook: {
          url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
          secret: SECRET,
          format: 'json',
          maxAttempts: 4,
          backoffMs: 50,
          timeoutMs: 2000,
          maxQueued: 100,
        },
      },
    });
    ({ broker, adminToken } = t);
    await t.startAgent('near-db');
    await addLocalPgConnection(broker, 'db', 'near-db');
    for (const [name, group] of [
      ['rita', 'dev'],
      ['abe', 'dba'],
      ['bea', 'dba'],
      ['dan', 'dev'],
    ] as const) {
      tokens[name] = await t.addUser(name, [group]);
    }
    for (const group of ['dev', 'dba']) {
      const rule = await api('POST', '/api/v1/access/allow', adminToken, {
        group,
        connection: 'db',
        actions: ['connect'],
      });
      assert.equal(rule.status, 201, JSON.stringify(rule.body));
    }
    await setPolicy({
      approvers: ['dba'],
      min_approvals: 1,
      access: { required: true, max_duration: '1h', justification: 'required' },
    });
  });

  after(async () => {
    await t.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  });

  it('parses the reviews section strictly and keeps it re-parseable', () => {
    const doc = {
      reviews: {
        approvers: ['dba'],
        min_approvals: 2,
        access: { required: true, max_duration: '2h', justification: 'required' },
        statements: ['ddl', 'write', 'DROP'],
      },
    };
    const policy = parsePolicy(doc);
    assert.deepEqual(policy.reviews?.statements, ['ddl', 'write', 'drop']);
    assert.deepEqual(parsePolicy(policy), policy);
    for (const [bad, path] of [
      [{ approvers: ['dba'], extra: 1 }, 'reviews.extra'],
      [{ min_approvals: 0 }, 'reviews.min_approvals'],
      [{ access: { max_duration: 'soon' } }, 'reviews.access.max_duration'],
      [{ access: { justification: 'maybe' } }, 'reviews.access.justification'],
      [{ statements: ['reads'] }, 'reviews.statements[0]'],
    ] as const) {
      assert.throws(
        () => parsePolicy({ reviews: bad }),
        (e: Error) => e.message.includes(path),
        path,
      );
    }
  });

  it('a token session cannot bypass the review: only an approved grant opens the connection', async () => {
    await assert.rejects(pgClient(as('rita')).connect(), /approved access review/);
  });

  it('refuses a request without justification or longer than max_duration', async () => {
    const noReason = await api('POST', '/api/v1/grants', as('rita'), { connection: 'db' });
    assert.equal(noReason.status, 400);
    assert.match(noReason.body.error?.message ?? '', /justification/);
    const tooLong = await api('POST', '/api/v1/grants', as('rita'), {
      connection: 'db',
      reason: 'x',
      ttl: '2h',
    });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.body.error?.message ?? '', /at most 1h/);
  });

  it('approves a 3-second window: the requester gets the grant, uses it, and it expires', async () => {
    const id = await request({ ttl: 3 });
    // The requester sees it pending, without a grant; someone who is neither requester nor
    // approver cannot see it at all.
    const pending = await api('GET', `/api/v1/reviews/${id}`, as('rita'));
    assert.equal(pending.body['status'], 'pending');
    assert.equal(pending.body['grant'], undefined);
    assert.equal(pending.body['approveWith'], `hoop reviews approve ${id}`);
    assert.equal((await api('GET', `/api/v1/reviews/${id}`, as('dan'))).status, 404);
    assert.equal((await api('POST', `/api/v1/reviews/${id}/approve`, as('dan'))).status, 404);

    // The approver lists it.
    const list = await api('GET', '/api/v1/reviews?status=pending', as('abe'));
    assert.ok(Array.isArray(list.body));
    assert.ok((list.body as unknown as { id: string }[]).some((r) => r.id === id));

    const approved = await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'), {
      reason: 'ok for INC-42',
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body['status'], 'approved');
    assert.equal(approved.body['grant'], undefined, 'the approver never sees the grant');

    const mine = await api('GET', `/api/v1/reviews/${id}`, as('rita'));
    const grant = mine.body['grant'] as { id: string; grant: string; expiresAt: string };
    assert.equal(grant.id, mine.body['grantId']);
    const again = await api('GET', `/api/v1/reviews/${id}`, as('rita'));
    assert.equal((again.body['grant'] as { id: string }).id, grant.id, 'the same grant');

    const c = pgClient(grant.grant);
    c.on('error', () => {});
    await c.connect();
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    await Promise.race([ended, sleep(Date.parse(grant.expiresAt) - Date.now() + 5_000)]);
    assert.ok(Date.now() >= Date.parse(grant.expiresAt) - 50, 'not before the window ended');
    await assert.rejects(c.query('select 1'));
    await c.end().catch(() => {});
    await assert.rejects(pgClient(grant.grant).connect(), /GRANT_EXPIRED|expired/);
    const after = await api('GET', `/api/v1/reviews/${id}`, as('rita'));
    assert.equal(after.body['grant'], undefined, 'no grant once the window is over');
  });

  it('rejects: no grant, and a decided review cannot be approved', async () => {
    const id = await request();
    const rejected = await api('POST', `/api/v1/reviews/${id}/reject`, as('bea'), {
      reason: 'use the replica',
    });
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    assert.equal(rejected.body['status'], 'rejected');
    assert.equal(rejected.body['decisionReason'], 'use the replica');
    const mine = await api('GET', `/api/v1/reviews/${id}`, as('rita'));
    assert.equal(mine.body['status'], 'rejected');
    assert.equal(mine.body['grant'], undefined);
    const late = await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'));
    assert.equal(late.status, 400);
    assert.match(late.body.error?.message ?? '', /rejected/);
  });

  it('refuses self-approval, even by an admin', async () => {
    const id = await request();
    const self = await api('POST', `/api/v1/reviews/${id}/approve`, as('rita'));
    assert.equal(self.status, 403);
    const adminOwn = await api('POST', '/api/v1/grants', adminToken, {
      connection: 'db',
      reason: 'admin needs it too',
    });
    assert.equal(adminOwn.status, 202);
    const adminId = (adminOwn.body['review'] as { id: string }).id;
    const adminSelf = await api('POST', `/api/v1/reviews/${adminId}/approve`, adminToken);
    assert.equal(adminSelf.status, 403);
    assert.match(adminSelf.body.error?.message ?? '', /your own/);
    // Admins may approve others' reviews.
    const byAdmin = await api('POST', `/api/v1/reviews/${id}/approve`, adminToken);
    assert.equal(byAdmin.body['status'], 'approved');
  });

  it('needs min_approvals distinct approvers', async () => {
    await setPolicy({
      approvers: ['dba'],
      min_approvals: 2,
      access: { required: true, max_duration: '1h', justification: 'optional' },
    });
    try {
      const id = await request();
      const first = await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'));
      assert.equal(first.body['status'], 'pending');
      assert.equal((first.body['approvals'] as unknown[]).length, 1);
      const twice = await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'));
      assert.equal(twice.status, 400);
      assert.match(twice.body.error?.message ?? '', /already approved/);
      assert.equal(
        (await api('GET', `/api/v1/reviews/${id}`, as('rita'))).body['grant'],
        undefined,
      );
      const second = await api('POST', `/api/v1/reviews/${id}/approve`, as('bea'));
      assert.equal(second.body['status'], 'approved');
      assert.deepEqual(
        (second.body['approvals'] as { user: string }[]).map((a) => a.user),
        ['abe', 'bea'],
      );
      assert.ok((await api('GET', `/api/v1/reviews/${id}`, as('rita'))).body['grant']);
    } finally {
      await setPolicy({
        approvers: ['dba'],
        min_approvals: 1,
        access: { required: true, max_duration: '1h', justification: 'required' },
      });
    }
  });

  it('revoking an approved review revokes its grant and closes the live session', async () => {
    const id = await request({ ttl: '10m' });
    await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'));
    const grant = (await api('GET', `/api/v1/reviews/${id}`, as('rita'))).body['grant'] as {
      grant: string;
    };
    const c = pgClient(grant.grant);
    c.on('error', () => {});
    await c.connect();
    await c.query('select 1');
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    assert.equal((await api('POST', `/api/v1/reviews/${id}/revoke`, as('dan'))).status, 404);
    const revoked = await api('POST', `/api/v1/reviews/${id}/revoke`, as('bea'), {
      reason: 'done',
    });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body['status'], 'revoked');
    assert.equal(revoked.body['sessionsEnded'], 1);
    await Promise.race([ended, sleep(5_000).then(() => assert.fail('session still open'))]);
    await c.end().catch(() => {});
    await assert.rejects(pgClient(grant.grant).connect(), /GRANT_REVOKED|revoked/);
  });

  it('holds a write for approval: NoticeResponse, runs exactly once when approved, 42501 when rejected', async () => {
    const direct = new pg.Client({
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'test',
    });
    await direct.connect();
    const table = `hoop_review_${randomBytes(4).toString('hex')}`;
    await direct.query(`create table ${table} (n int)`);
    await setPolicy({ approvers: ['dba'], min_approvals: 1, statements: ['ddl', 'write'] });
    const c = pgClient(as('rita'));
    c.on('error', () => {});
    try {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.connect();
      assert.deepEqual((await c.query(`select count(*)::int as n from ${table}`)).rows, [{ n: 0 }]);

      // Approved: the held INSERT runs once.
      const insert = c.query(`insert into ${table} values (1)`);
      await until(() => notices.length === 1);
      const id = /review ([0-9a-f-]{36}) \(approve with: hoop reviews approve \1\)/.exec(
        notices[0] as string,
      )?.[1] as string;
      assert.ok(id, notices[0]);
      assert.match(notices[0] as string, /^hoop: waiting for approval: review /);
      const shown = await api('GET', `/api/v1/reviews/${id}`, as('abe'));
      assert.equal(shown.body['kind'], 'statement');
      assert.equal(shown.body['statement'], `insert into ${table} values (1)`);
      assert.equal((await direct.query(`select count(*)::int as n from ${table}`)).rows[0].n, 0);
      assert.equal((await api('POST', `/api/v1/reviews/${id}/approve`, as('rita'))).status, 403);
      assert.equal((await api('POST', `/api/v1/reviews/${id}/approve`, as('abe'))).status, 200);
      assert.equal((await insert).rowCount, 1);
      assert.equal((await direct.query(`select count(*)::int as n from ${table}`)).rows[0].n, 1);

      // Rejected: ErrorResponse 42501, and the session still works.
      const refused = c.query(`delete from ${table}`);
      await until(() => notices.length === 2);
      const id2 = /review ([0-9a-f-]{36})/.exec(notices[1] as string)?.[1] as string;
      await api('POST', `/api/v1/reviews/${id2}/reject`, as('bea'), { reason: 'not in prod' });
      await assert.rejects(refused, (e: { code?: string; message?: string }) => {
        assert.equal(e.code, '42501');
        assert.match(String(e.message), /rejected by bea: not in prod/);
        return true;
      });
      assert.deepEqual((await c.query(`select count(*)::int as n from ${table}`)).rows, [{ n: 1 }]);
      // Reads are never held.
      assert.equal(notices.length, 2);
      // The extended protocol is held too, with its parameters shown; rejected, the session
      // still works.
      const extended = c.query({ text: `insert into ${table} values ($1)`, values: [9] });
      await until(() => notices.length === 3);
      const id3 = /review ([0-9a-f-]{36})/.exec(notices[2] as string)?.[1] as string;
      assert.equal(
        (await api('GET', `/api/v1/reviews/${id3}`, as('abe'))).body['statement'],
        `insert into ${table} values ($1)\n-- parameters: $1 = '9'`,
      );
      await api('POST', `/api/v1/reviews/${id3}/reject`, as('abe'));
      await assert.rejects(extended, /rejected by abe/);
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
      assert.equal((await direct.query(`select count(*)::int as n from ${table}`)).rows[0].n, 1);
    } finally {
      await c.end().catch(() => {});
      await direct.query(`drop table if exists ${table}`);
      await direct.end();
      await setPolicy({
        approvers: ['dba'],
        min_approvals: 1,
        access: { required: true, max_duration: '1h', justification: 'required' },
      });
    }
  });

  it('pending reviews expire (injected clock)', async () => {
    const clock = new FakeClock(Date.now());
    const ctx = { ...broker.store.context, clock };
    const events: string[] = [];
    const reviews = new ReviewService({
      ctx,
      audit: async (e) => {
        events.push(e.type);
      },
      grants: new GrantService({ ctx, audit: async () => {} }),
      logger: silentLogger,
      policyOf: (name) => broker.store.getConnectionPolicy(name),
      terminateGrant: () => 0,
      pendingTtlSeconds: 3600,
    });
    const rita = { userId: 'u-rita-fake', name: 'rita', role: 'user' as const, groups: ['dev'] };
    const review = await reviews.requestAccess(rita, { connection: 'db', justification: 'x' });
    clock.advance(3599_000);
    // Other tests' pending reviews (made with real time) may be due by now; this one is not.
    await reviews.expireDue();
    assert.equal((await reviews.show(rita, review.id)).status, 'pending');
    clock.advance(2_000);
    assert.equal((await reviews.show(rita, review.id)).status, 'expired');
    await assert.rejects(
      reviews.approve({ userId: 'u-abe', name: 'abe', role: 'user', groups: ['dba'] }, review.id),
      /expired/,
    );
    assert.equal(events[0], 'review-created');
    assert.ok(events.includes('review-decided'));
  });

  it('records every step in the audit log', async () => {
    const rows = await broker.store.context.db
      .select()
      .from(auditEvents)
      .where(inArray(auditEvents.type, ['review-created', 'review-approval', 'review-decided']));
    const types = new Set(rows.map((r) => r.type));
    assert.deepEqual([...types].sort(), ['review-approval', 'review-created', 'review-decided']);
    const statuses = new Set(
      rows
        .filter((r) => r.type === 'review-decided')
        .map((r) => (r.data as { detail: { status: string } }).detail.status),
    );
    for (const s of ['approved', 'rejected', 'revoked']) assert.ok(statuses.has(s), s);
    const minted = await broker.store.context.db
      .select()
      .from(auditEvents)
      .where(inArray(auditEvents.type, ['grant-minted']));
    assert.ok(minted.some((r) => (r.data as { detail: { via: string } }).detail.via === 'review'));
  });

  it('delivers signed webhooks on created and decided, retrying a failed delivery', async () => {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && !deliveries.some((d) => d.body.includes('"revoked"'))) {
      await sleep(50);
    }
    assert.equal(failNext, 0, 'the first delivery failed and was retried');
    const events = deliveries.map((d) => {
      const expected = `sha256=${createHmac('sha256', SECRET).update(d.body).digest('hex')}`;
      assert.equal(d.headers['x-hoop-signature'], expected);
      assert.equal(d.headers['content-type'], 'application/json');
      return JSON.parse(d.body) as { event: string; review: { id: string; status: string } };
    });
    assert.ok(events.some((e) => e.event === 'review.created' && e.review.status === 'pending'));
    for (const status of ['approved', 'rejected', 'revoked']) {
      assert.ok(
        events.some((e) => e.event === 'review.decided' && e.review.status === status),
        status,
      );
    }
    assert.ok(!deliveries.some((d) => d.body.includes('eyJ')), 'no grant in a webhook');
  });

  it('formats a Slack-compatible payload', () => {
    const body = JSON.parse(
      webhookBody('slack', {
        event: 'review.created',
        review: reviewView({}),
      }),
    ) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['text']);
    assert.match(
      body['text'] as string,
      /rita asks for access to \*db\*.*hoop reviews approve r1/s,
    );
  });

  it('makes a break-glass review loud in Slack, and says so once it is revoked', () => {
    const review = reviewView({
      id: 'r2',
      status: 'approved',
      requester: 'olga',
      justification: 'INC-9',
      breakGlass: true,
      decidedAt: '',
      decidedBy: 'olga',
      decisionReason: 'INC-9',
      grantId: 'g1',
      approveWith: 'hoop reviews approve r2',
    });
    const text = (status: 'approved' | 'revoked') =>
      (
        JSON.parse(
          webhookBody('slack', { event: 'review.decided', review: { ...review, status } }),
        ) as { text: string }
      ).text;
    assert.match(
      text('approved'),
      /^<!here> :rotating_light: \*BREAK-GLASS\*.*olga took access to \*db\* for 600s without approval: “INC-9”.*hoop reviews revoke r2/s,
    );
    assert.match(text('revoked'), /is \*revoked\*.*\(break-glass\)$/);
    const json = JSON.parse(webhookBody('json', { event: 'review.decided', review })) as {
      review: { breakGlass: boolean };
    };
    assert.equal(json.review.breakGlass, true);
  });
});

/** A pending access review of `db` by rita, as the API shows it, with `overrides`. */
function reviewView(overrides: Partial<ReviewView>): ReviewView {
  return {
    id: 'r1',
    kind: 'access',
    status: 'pending',
    connection: 'db',
    requester: 'rita',
    justification: 'INC-42',
    durationSeconds: 600,
    statement: null,
    approvals: [],
    minApprovals: 1,
    approvers: ['dba'],
    requireAllGroups: false,
    missingGroups: [],
    breakGlass: false,
    createdAt: '',
    expiresAt: '',
    decidedAt: null,
    decidedBy: null,
    decisionReason: null,
    grantId: null,
    approveWith: 'hoop reviews approve r1',
    ...overrides,
  };
}
