/**
 * Just-in-time access with real processes: a broker (with the review webhook pointed at a
 * receiver in this test), an agent, the machine's PostgreSQL behind a connection whose policy
 * requires an access review approved by every approver group, with a break-glass group; people
 * as local users driving the real `hoop` CLI, and psql as the client.
 *
 * - all groups: a dba's approval (and an admin's) leaves the review pending, naming the missing
 *   group; an sre's approval approves it, and `hoop connect --review ID` serves on its grant;
 * - break-glass: an on-call member with a reason gets access at once (psql works), the review is
 *   approved and marked, audited and sent to the webhook; without a reason, or not on call, it
 *   is refused; self-approval is still refused;
 * - `hoop connect` asks for the review itself, waits (spinner line with the review id and the
 *   approver's command) until approved, then psql works through it; `--no-wait` exits 7.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Deployment } from './support/deployment.js';
import { type Env, tempDir } from './support/env.js';
import { runHoop, runHoopJson, spawnHoop } from './support/hoop.js';
import type { ChildHandle } from './support/process.js';
import { psqlValue } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

const POLICY = `
reviews:
  approvers: [dba, sre]
  min_approvals: 1
  require_all_groups: true
  break_glass: [oncall]
  access: { required: true, max_duration: 1h, justification: required }
`;

const people = {
  rita: ['dev'],
  abe: ['dba'],
  sam: ['sre'],
  olga: ['oncall', 'dev'],
} as const;
type Person = keyof typeof people;

interface ReviewJson {
  id: string;
  status: string;
  requester: string;
  breakGlass: boolean;
  missingGroups: string[];
  decidedBy: string | null;
  approvals: { user: string; groups: string[] }[];
}

interface Hook {
  event: string;
  review: ReviewJson;
}

const REVIEW_ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe('approvers: all groups, break-glass, hoop connect waits', { timeout: 240_000 }, () => {
  let d: Deployment;
  let receiver: Server;
  const hooks: Hook[] = [];
  const env: Record<string, Env> = {};
  const as = (p: Person | 'admin'): Env => (p === 'admin' ? d.adminEnv() : (env[p] as Env));

  /** `hoop ARGS` as `who`, expecting `code`; returns stdout. */
  async function hoop(who: Person | 'admin', args: string[], code = 0): Promise<string> {
    const r = await runHoop(args, as(who));
    assert.equal(r.code, code, `hoop ${args.join(' ')} as ${who}: ${r.stdout}\n${r.stderr}`);
    return r.code === 0 ? r.stdout : `${r.stdout}\n${r.stderr}`;
  }

  const show = (who: Person | 'admin', id: string) =>
    runHoopJson<ReviewJson>(['reviews', 'show', id], as(who));

  /** `grants request orders --no-wait --json` as `who`: the pending review's id. */
  async function pendingReview(who: Person, reason: string): Promise<string> {
    const r = await runHoop(
      ['--json', 'grants', 'request', 'orders', '--reason', reason, '--no-wait'],
      as(who),
    );
    assert.equal(r.code, 7, r.stderr);
    return (JSON.parse(r.stdout) as { review: { id: string } }).review.id;
  }

  /** `hoop connect orders --port 0 ARGS` as `who`, disposed with the deployment. */
  function connect(who: Person, args: string[]): ChildHandle {
    return d.scope.use(
      spawnHoop(`hoop connect as ${who}`, ['connect', 'orders', '--port', '0', ...args], as(who)),
    );
  }

  /** The psql URL a human-mode `hoop connect` prints once it is ready. */
  function readyUrl(c: ChildHandle): Promise<string> {
    return c.waitForStdout((out) => /psql "([^"]+)"[\s\S]*Ctrl-C to stop/.exec(out)?.[1], {
      timeoutMs: 60_000,
      what: 'hoop connect to be ready',
    });
  }

  before(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Hook);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    d = await Deployment.start({ env: { HOOP_REVIEW_WEBHOOK_URL: hookUrl } });
    await d.addAgent('edge');
    await d.addConnection('orders', { agent: 'edge', target: machinePostgres() });
    const file = join(tempDir('approvers'), 'policy.yaml');
    writeFileSync(file, POLICY);
    await hoop('admin', ['admin', 'connections', 'policy', 'set', 'orders', '--file', file]);
    for (const group of ['dev', 'dba', 'sre', 'oncall']) {
      await hoop(
        'admin',
        ['admin', 'access', 'allow', '--group', group].concat([
          '--connection',
          'orders',
          '--actions',
          'connect',
        ]),
      );
    }
    for (const [name, groups] of Object.entries(people)) {
      env[name] = d.broker.userEnv(await addUser(d, name, groups));
    }
  });

  after(async () => {
    await d?.dispose();
    await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  });

  test('every approver group must approve; connect --review then serves on the grant', async () => {
    const id = await pendingReview('rita', 'INC-1 all groups');
    const byDba = await hoop('abe', ['reviews', 'approve', id]);
    assert.match(byDba, /is pending \(1 of 1 approvals; still needs a member of sre\)/);
    // An admin approves as an admin: counted, but no group is satisfied by it.
    await hoop('admin', ['reviews', 'approve', id]);
    const stillPending = await show('rita', id);
    assert.equal(stillPending.status, 'pending');
    assert.deepEqual(stillPending.missingGroups, ['sre']);
    assert.deepEqual(
      stillPending.approvals.map((a) => [a.user, a.groups]),
      [
        ['abe', ['dba']],
        ['admin', []],
      ],
    );
    const human = await hoop('rita', ['reviews', 'show', id]);
    assert.match(human, /missing groups\s+sre/);
    assert.match(human, /every group must approve/);
    // Waiting on it with --no-wait still says pending.
    await hoop('rita', ['connect', 'orders', '--review', id, '--no-wait'], 7);

    const bySre = await hoop('sam', ['reviews', 'approve', id]);
    assert.match(bySre, new RegExp(`review ${id} is approved`));
    const approved = await show('rita', id);
    assert.equal(approved.status, 'approved');
    assert.deepEqual(approved.missingGroups, []);

    const c = connect('rita', ['--review', id]);
    assert.equal(await psqlValue(await readyUrl(c), 'select 6 * 7'), '42');
    await c.stop();
    // Someone else's review gives no grant.
    await hoop('olga', ['connect', 'orders', '--review', id], 4);
  });

  test('break-glass: an on-call member with a reason gets access at once; others are refused', async () => {
    const before = hooks.length;
    const c = connect('olga', ['--break-glass', '--reason', 'INC-9 orders down', '--ttl', '5m']);
    assert.equal(await psqlValue(await readyUrl(c), 'select 40 + 2'), '42');
    await c.stop();
    assert.match(c.stderr, /break-glass: review .* approved at once/);
    const id = REVIEW_ID.exec(/break-glass: review (\S+)/.exec(c.stderr)?.[1] ?? '')?.[0] ?? '';
    assert.ok(id, c.stderr);

    // Visible to approvers, approved, marked, decided by the requester.
    const listed = await runHoopJson<ReviewJson[]>(['reviews', 'list'], as('abe'));
    const review = listed.find((r) => r.id === id);
    assert.ok(review, 'the approver lists it');
    assert.equal(review.status, 'approved');
    assert.equal(review.breakGlass, true);
    assert.equal(review.decidedBy, 'olga');
    assert.match(await hoop('abe', ['reviews', 'show', id]), /BREAK-GLASS/);

    // Audited, and the webhook heard about it as a decided, break-glass review.
    const audit = await runHoopJson<{ type: string; data: { subject?: string } }[]>(
      ['audit', 'list', '--user', 'olga'],
      d.adminEnv(),
    );
    assert.ok(audit.some((e) => e.type === 'review-break-glass' && e.data.subject === id));
    const hook = await waitFor(() => hooks.slice(before).find((h) => h.review.id === id), {
      timeoutMs: 10_000,
      what: 'the webhook delivery of the break-glass review',
    });
    assert.equal(hook.event, 'review.decided');
    assert.equal(hook.review.breakGlass, true);
    assert.equal(hook.review.status, 'approved');

    // Without a reason: refused, with what to do.
    const noReason = await hoop('olga', ['grants', 'request', 'orders', '--break-glass'], 2);
    assert.match(noReason, /needs a justification/);
    assert.match(noReason, /--reason/);
    // Not on call: refused.
    const notOnCall = await hoop(
      'rita',
      ['grants', 'request', 'orders', '--break-glass', '--reason', 'please'],
      3,
    );
    assert.match(notOnCall, /not in a break-glass group of orders \(oncall\)/);
    // Break-glass is no way to approve one's own pending review.
    const own = await pendingReview('olga', 'INC-10');
    assert.match(await hoop('olga', ['reviews', 'approve', own], 3), /your own review/);
    // An approver ends the break-glass window.
    assert.match(await hoop('sam', ['reviews', 'revoke', id]), /revoked/);
  });

  test('hoop connect asks for the review, waits for the approvers, then psql works', async () => {
    const c = connect('rita', ['--reason', 'INC-7 connect', '--poll-interval', '100']);
    const id = await waitFor(
      () =>
        /waiting for approval: review (\S+) \(an approver runs: hoop reviews approve \1\)/.exec(
          c.stderr,
        )?.[1],
      { timeoutMs: 30_000, what: 'the waiting line', details: () => c.describe() },
    );
    assert.equal(c.stdout, '', 'not ready before approval');
    await hoop('abe', ['reviews', 'approve', id]);
    await hoop('sam', ['reviews', 'approve', id]);
    const url = await readyUrl(c);
    assert.match(c.stdout, new RegExp(`access comes from review ${id}`));
    assert.equal(await psqlValue(url, 'select 1 + 1'), '2');
    await c.stop();
  });

  test('hoop connect --no-wait exits 7 with the review id (--json: {review})', async () => {
    const human = await runHoop(
      ['connect', 'orders', '--port', '0', '--reason', 'INC-8', '--no-wait'],
      as('rita'),
    );
    assert.equal(human.code, 7, human.stderr);
    assert.match(human.stdout.trim(), new RegExp(`^${REVIEW_ID.source}$`));
    assert.match(human.stderr, /PENDING_APPROVAL|waits for review/);
    const json = await runHoop(
      ['--json', 'connect', 'orders', '--port', '0', '--reason', 'INC-8', '--no-wait'],
      as('rita'),
    );
    assert.equal(json.code, 7, json.stderr);
    const { review } = JSON.parse(json.stdout) as { review: { id: string; status: string } };
    assert.equal(review.status, 'pending');
    assert.equal((await show('abe', review.id)).status, 'pending');
  });
});

/** A local user in `groups` (over the API, as the admin) and a login token for them. */
async function addUser(d: Deployment, name: string, groups: readonly string[]): Promise<string> {
  const password = `pw-${name}-${process.pid}-correct-horse`;
  const call = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(new URL(path, d.broker.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await call('/api/v1/users', { name, groups, password }, d.broker.adminToken);
  return (await call('/api/v1/auth/login', { user: name, password }))['token'] as string;
}
