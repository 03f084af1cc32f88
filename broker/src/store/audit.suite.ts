/**
 * The hash-chained audit log, run on every backend (audit.pglite.test.ts, audit.postgres.test.ts):
 * insert, idempotent redelivery, verify, tamper detection (edit, delete, reorder), retention.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type AuditEvent, FakeClock, silentLogger } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import { createAuditRecorder } from '../audit/record.js';
import {
  appendAuditEvents,
  GENESIS_HASH,
  listAudit,
  listSessionEvents,
  sweepAudit,
  verifyAudit,
} from './audit.js';
import type { Database } from './database.js';
import { Store } from './store.js';

export function runAuditSuite(name: string, open: () => Promise<Database>): void {
  describe(`audit chain (${name})`, () => {
    let database: Database;
    let store: Store;
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    let agentId = '';
    let session = '';

    before(async () => {
      database = await open();
      store = new Store(database, randomBytes(32), clock);
      const { agent } = await store.createAgent('audit-agent');
      agentId = agent.id;
      const conn = await store.createConnection({
        name: 'audit-db',
        agent: 'audit-agent',
        type: 'postgres',
        host: '127.0.0.1',
        port: 5432,
        user: 'u',
        database: 'd',
      });
      session = (
        await store.createSession({
          connectionId: conn.id,
          connectionName: conn.name,
          userId: null,
          agentId,
        })
      ).id;
    });
    after(async () => {
      await database.close();
    });

    const ev = (i: number): AuditEvent => ({
      type: 'statement',
      session,
      at: clock.now() + i,
      text: `select ${i}`,
      durationMs: i,
      rows: i,
    });

    it('chains rows from the genesis hash and verifies', async () => {
      const r = await appendAuditEvents(store.context, agentId, [ev(1), ev(2), ev(3)], 1);
      assert.deepEqual(r, { stored: 3, rejected: 0, duplicates: 0 });
      await createAuditRecorder(store.context, silentLogger)({ type: 'login', actor: 'alice' });
      const rows = await listAudit(store.context);
      assert.equal(rows.length, 4);
      assert.equal(rows[0]?.prevHash, GENESIS_HASH);
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i]?.prevHash, rows[i - 1]?.hash);
      const v = await verifyAudit(store.context);
      assert.equal(v.ok, true, JSON.stringify(v.problems));
      assert.equal(v.rows, 4);
    });

    it('ignores redelivered events (same session and seq) and still reports them stored', async () => {
      const r = await appendAuditEvents(store.context, agentId, [ev(2), ev(3), ev(4)], 2);
      assert.deepEqual(r, { stored: 1, rejected: 0, duplicates: 2 });
      const events = await listSessionEvents(store.context, session);
      assert.deepEqual(
        events.map((e) => (e.event as { text: string }).text),
        ['select 1', 'select 2', 'select 3', 'select 4'],
      );
      assert.equal((await verifyAudit(store.context)).ok, true);
    });

    it('rejects events for sessions the agent did not serve', async () => {
      const r = await appendAuditEvents(
        store.context,
        agentId,
        [{ ...ev(9), session: 'nope' }],
        100,
      );
      assert.equal(r.rejected, 1);
    });

    it('serializes concurrent appends into one unforked chain', async () => {
      await Promise.all(
        [10, 20, 30, 40].map((base) =>
          appendAuditEvents(store.context, agentId, [ev(base), ev(base + 1)], base),
        ),
      );
      assert.equal((await verifyAudit(store.context)).ok, true);
    });

    it('names an edited row, a deleted row and reordered rows', async () => {
      const rows = await listAudit(store.context);
      const target = rows[2];
      assert.ok(target !== undefined);
      await database.db.execute(
        sql`update audit_events set data = jsonb_set(data, '{text}', '"drop table x"') where id = ${target.id}`,
      );
      let v = await verifyAudit(store.context);
      assert.equal(v.ok, false);
      assert.deepEqual(
        v.problems.map((p) => [p.id, p.kind]),
        [[target.id, 'edited']],
      );
      // put it back exactly: the chain is whole again
      await database.db.execute(
        sql`update audit_events set data = ${JSON.stringify(target.data)}::jsonb where id = ${target.id}`,
      );
      assert.equal((await verifyAudit(store.context)).ok, true);

      const a = rows[4];
      const b = rows[5];
      assert.ok(a !== undefined && b !== undefined);
      // reorder: swap the content of two rows
      await database.db.execute(
        sql`update audit_events set data = ${JSON.stringify(b.data)}::jsonb, seq = ${b.seq} + 100000 where id = ${a.id}`,
      );
      v = await verifyAudit(store.context);
      assert.ok(
        v.problems.some((p) => p.id === a.id),
        JSON.stringify(v.problems),
      );

      const c = rows[6];
      assert.ok(c !== undefined);
      await database.db.execute(sql`delete from audit_events where id = ${c.id}`);
      v = await verifyAudit(store.context);
      assert.ok(
        v.problems.some((p) => p.kind === 'broken-link' && p.message.includes(String(c.id))),
        JSON.stringify(v.problems),
      );
    });

    it('retention deletes a prefix and re-anchors so verify stays meaningful', async () => {
      const fresh = await open();
      const s2 = new Store(fresh, randomBytes(32), clock);
      try {
        const rec = createAuditRecorder(s2.context, silentLogger);
        for (let i = 0; i < 5; i++)
          await rec({ type: 'admin-change', actor: 'root', subject: `c${i}` });
        clock.advance(10 * 86_400_000);
        await rec({ type: 'login', actor: 'bob' });
        const { deleted } = await sweepAudit(s2.context, new Date(clock.now() - 86_400_000));
        assert.equal(deleted, 5);
        const v = await verifyAudit(s2.context);
        assert.equal(v.ok, true, JSON.stringify(v.problems));
        assert.notEqual(v.anchoredFrom, null);
        assert.equal(v.rows, 2);
        // deleting the oldest remaining row without an anchor is caught
        const rows = await listAudit(s2.context);
        await fresh.db.execute(sql`delete from audit_events where id = ${rows[0]?.id}`);
        const broken = await verifyAudit(s2.context);
        assert.equal(broken.ok, false);
        assert.equal(broken.problems[0]?.kind, 'bad-start');
      } finally {
        await fresh.close();
      }
    });
  });
}
