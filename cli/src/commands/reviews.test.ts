/**
 * `hoop grants request` on a connection that needs approval, and `hoop reviews …`, as the real
 * `hoop` binary against a real in-process broker: `--no-wait` exits 7 with the review id, the
 * default waits (printing the review id and the approver's command on stderr) and proceeds by
 * itself once another user approves; self-approval is refused; a rejection ends the wait.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '@hoop/broker/testing';
import { ExitCode } from '@hoop/shared';
import { runHoop as run, startHoop as start } from '../testing/hoop-binary.js';

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('hoop reviews', () => {
  let t: TestBroker;
  const env: Record<string, Record<string, string>> = {};

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-cli-reviews-', dataSubdir: 'data' });
    await t.broker.store.createAgent('a1');
    await addLocalPgConnection(t.broker, 'db', 'a1');
    const call = async (method: string, path: string, body: unknown) => {
      const res = await t.api(method, path, body);
      assert.ok(res.status >= 200 && res.status < 300, `${path}: ${res.status}`);
    };
    await call('PUT', '/api/v1/connections/db/policy', {
      reviews: {
        approvers: ['dba'],
        access: { required: true, max_duration: '2h', justification: 'required' },
      },
    });
    for (const [name, group] of [
      ['rita', 'dev'],
      ['abe', 'dba'],
    ] as const) {
      const token = await t.addUser(name, [group]);
      await call('POST', '/api/v1/access/allow', { group, connection: 'db', actions: ['connect'] });
      env[name] = {
        HOOP_CONFIG: join(t.dir, `${name}.json`),
        HOOP_BROKER_URL: t.broker.url,
        HOOP_TOKEN: token,
      };
    }
  });

  after(() => t.close());

  it('--no-wait exits 7 (pending) with the review id; reviews list --json shows it', async () => {
    const res = await run(
      ['--json', 'grants', 'request', 'db', '--reason', 'INC-1', '--no-wait'],
      env['rita'] as Record<string, string>,
    );
    assert.equal(res.code, ExitCode.pending, res.err);
    assert.equal(ExitCode.pending, 7);
    const { review } = JSON.parse(res.out) as { review: { id: string; status: string } };
    assert.equal(review.status, 'pending');
    assert.match(JSON.parse(res.err).error.code, /PENDING_APPROVAL/);

    const list = await run(['reviews', 'list', '--json'], env['abe'] as Record<string, string>);
    assert.equal(list.code, 0, list.err);
    const reviews = JSON.parse(list.out) as { id: string; status: string }[];
    assert.ok(Array.isArray(reviews));
    assert.ok(reviews.some((r) => r.id === review.id && r.status === 'pending'));

    const human = await run(
      ['grants', 'request', 'db', '--reason', 'INC-1', '--no-wait'],
      env['rita'] as Record<string, string>,
    );
    assert.equal(human.code, 7);
    assert.match(human.out.trim(), /^[0-9a-f-]{36}$/);

    const self = await run(
      ['reviews', 'approve', review.id],
      env['rita'] as Record<string, string>,
    );
    assert.equal(self.code, ExitCode.denied, self.out);
    assert.match(self.err, /own review/);

    const missingReason = await run(
      ['grants', 'request', 'db', '--no-wait'],
      env['rita'] as Record<string, string>,
    );
    assert.equal(missingReason.code, ExitCode.usage);
    assert.match(missingReason.err, /justification/);
  });

  it('waits with the review id and the approver command, then prints the grant once approved', async () => {
    const waiting = start(
      ['grants', 'request', 'db', '--reason', 'INC-2', '--ttl', '10m', '--poll-interval', '100'],
      env['rita'] as Record<string, string>,
    );
    await until(() => /hoop reviews approve [0-9a-f-]{36}/.test(waiting.state.err));
    const id = /review ([0-9a-f-]{36})/.exec(waiting.state.err)?.[1] as string;
    assert.match(waiting.state.err, new RegExp(`hoop reviews approve ${id}`));

    const shown = await run(['reviews', 'show', id], env['abe'] as Record<string, string>);
    assert.match(shown.out, /status\s+pending/);
    assert.match(shown.out, /INC-2/);
    const approved = await run(
      ['reviews', 'approve', id, '--reason', 'ok'],
      env['abe'] as Record<string, string>,
    );
    assert.equal(approved.code, 0, approved.err);
    assert.match(approved.out, /approved/);

    assert.equal(await waiting.exited, 0, waiting.state.err);
    assert.match(waiting.state.out.trim(), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(waiting.state.err, /approved by abe/);
  });

  it('a rejection ends the wait with a denied exit code', async () => {
    const waiting = start(
      ['--json', 'grants', 'request', 'db', '--reason', 'INC-3', '--poll-interval', '100'],
      env['rita'] as Record<string, string>,
    );
    // --json prints no spinner: find the pending review from the approver's side.
    let id = '';
    for (let i = 0; i < 100 && id === ''; i++) {
      const list = await run(
        ['reviews', 'list', '--json', '--status', 'pending'],
        env['abe'] as Record<string, string>,
      );
      const found = (JSON.parse(list.out) as { id: string; justification: string }[]).find(
        (r) => r.justification === 'INC-3',
      );
      if (found !== undefined) id = found.id;
      else await new Promise((r) => setTimeout(r, 100));
    }
    const rejected = await run(
      ['reviews', 'reject', id, '--reason', 'not today'],
      env['abe'] as Record<string, string>,
    );
    assert.equal(rejected.code, 0, rejected.err);
    assert.equal(await waiting.exited, ExitCode.denied);
    assert.match(waiting.state.err, /rejected by abe: not today/);
  });
});
