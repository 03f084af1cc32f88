/**
 * The audit log under chaos, with real processes: an agent SIGKILLed mid-session uploads the rest
 * of its spool after it restarts; a tampered row (UPDATE through SQL on the broker's PostgreSQL)
 * is named by `hoop audit verify`; a tiny spool budget refuses recorded sessions (SPOOL_FULL).
 * Statement events need the Postgres engine's recording (agent/src/engines/postgres/recorder.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { Deployment } from './support/deployment.js';
import { tempDir } from './support/env.js';
import { runHoop } from './support/hoop.js';
import { machinePostgres } from './support/targets.js';
import { waitFor } from './support/wait.js';

interface SessionView {
  id: string;
  status: string;
  errorCode: string | null;
  events: { type: string; text?: string }[];
}

const adminUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

describe('audit log under chaos', { timeout: 240_000 }, () => {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const dbName = `hoop_audit_e2e_${randomBytes(6).toString('hex')}`;
  const brokerDbUrl = (() => {
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    return u.toString();
  })();
  let d: Deployment | undefined;

  before(
    async () => {
      await admin.unsafe(`create database "${dbName}"`);
      d = await Deployment.start({ env: { HOOP_DATABASE_URL: brokerDbUrl } });
      await d.addAgent('edge');
      await d.addConnection('pg', { agent: 'edge', target: machinePostgres() });
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
    await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
    await admin.end({ timeout: 5 });
  });

  test('agent SIGKILLed mid-session: the session fails, and after restart its events are complete', async () => {
    const deployment = d as Deployment;
    const { agent: edge2 } = await deployment.addAgent('edge2');
    await deployment.addConnection('pg2', { agent: 'edge2', target: machinePostgres() });
    const conn = await deployment.connect('pg2');
    const client = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    await client.connect();
    const texts = ['select 101 as a', 'select 102 as b', 'select 103 as c'];
    for (const t of texts) await client.query(t);
    const sessions = await deployment.api<{ id: string; connectionName: string }[]>(
      '/api/v1/sessions?limit=50',
    );
    const id = sessions.find((s) => s.connectionName === 'pg2')?.id;
    assert.ok(id !== undefined);
    await edge2.kill();
    // The broker sees the agent's tunnel drop before the client says goodbye (on a loaded
    // machine the client's close could otherwise reach it first and end the session cleanly).
    await waitFor(
      async () => {
        const s = await deployment.api<SessionView>(`/api/v1/sessions/${id}`);
        return s.status === 'open' ? undefined : s;
      },
      { timeoutMs: 30_000, what: 'the broker to end the session of the killed agent' },
    );
    await client.end().catch(() => {});
    await edge2.start();
    const session = await waitFor(
      async () => {
        const s = await deployment.api<SessionView>(`/api/v1/sessions/${id}`);
        const recorded = s.events.filter((e) => e.type === 'statement').map((e) => e.text);
        return texts.every((t) => recorded.includes(t)) ? s : undefined;
      },
      { timeoutMs: 30_000, what: 'every statement of the killed session to be uploaded' },
    );
    assert.equal(session.status, 'failed');
    assert.equal(session.errorCode, 'AGENT_OFFLINE');
    assert.equal(session.events[0]?.type, 'session-start');
    const seqs = new Set(session.events.map((e) => JSON.stringify(e)));
    assert.equal(seqs.size, session.events.length, 'no duplicate events');
  });

  test('hoop audit verify passes, then names a row tampered with through SQL', async () => {
    const deployment = d as Deployment;
    const ok = await runHoop(['audit', 'verify', '--json'], deployment.adminEnv());
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).ok, true);
    const exported = await runHoop(['audit', 'export'], deployment.adminEnv());
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n');
    assert.ok(lines.length > 0);
    const victim = JSON.parse(lines[Math.floor(lines.length / 2)] as string) as { id: number };
    const db = postgres(brokerDbUrl, { max: 1, onnotice: () => {} });
    try {
      await db`update audit_events set type = 'forged' where id = ${victim.id}`;
    } finally {
      await db.end({ timeout: 5 });
    }
    const bad = await runHoop(['audit', 'verify'], deployment.adminEnv());
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, new RegExp(`row ${victim.id}: edited`));
    assert.match(bad.stderr, /AUDIT_CHAIN_BROKEN|audit chain is broken/);
  });

  test('a spool over its budget refuses recorded sessions with SPOOL_FULL', async () => {
    const deployment = d as Deployment;
    // A 1-byte budget: even the empty spool (its segment header) is over it.
    await deployment.addAgent('tiny', { env: { HOOP_SPOOL_MAX_BYTES: '1' } });
    await deployment.addConnection('pg3', { agent: 'tiny', target: machinePostgres() });
    const conn = await deployment.connect('pg3');
    let refused: Error | undefined;
    for (let i = 0; i < 50 && refused === undefined; i++) {
      const client = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('select 1');
      } catch (err) {
        refused = err as Error;
      } finally {
        await client.end().catch(() => {});
      }
    }
    assert.ok(refused !== undefined, 'a session was refused while the spool was over budget');
    assert.match(refused.message, /spool/i);
  });

  test('broker SIGKILLed right after a session: what the agent spooled while it was away arrives after restart', async () => {
    const deployment = d as Deployment;
    const conn = await deployment.connect('pg');
    const client = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    await client.connect();
    const texts = ['select 201 as a', 'select 202 as b'];
    for (const t of texts) await client.query(t);
    const sessions = await deployment.api<{ id: string; connectionName: string; status: string }[]>(
      '/api/v1/sessions?limit=50',
    );
    const id = sessions.find((s) => s.connectionName === 'pg' && s.status === 'open')?.id;
    assert.ok(id !== undefined, 'the live session is listed');
    // The session ends while the broker is gone: its session-end event can only be spooled.
    await deployment.broker.kill();
    await client.end().catch(() => {});
    await deployment.broker.startAgain();
    const session = await waitFor(
      async () => {
        const s = await deployment.api<SessionView>(`/api/v1/sessions/${id}`);
        const recorded = s.events.filter((e) => e.type === 'statement').map((e) => e.text);
        const ended = s.events.some((e) => e.type === 'session-end');
        return ended && texts.every((t) => recorded.includes(t)) ? s : undefined;
      },
      {
        timeoutMs: 45_000,
        what: 'the session, including its end, to be uploaded after the restart',
      },
    );
    assert.equal(new Set(session.events.map((e) => JSON.stringify(e))).size, session.events.length);
    const verify = await runHoop(['audit', 'verify', '--json'], deployment.adminEnv());
    // The chain may already carry the row the tamper test edited; only new rows matter here.
    assert.ok(verify.code === 0 || /edited/.test(verify.stdout), verify.stdout + verify.stderr);
  });

  test('a corrupt spool segment is quarantined and the agent keeps uploading everything else', async () => {
    const deployment = d as Deployment;
    const spoolDir = join(tempDir('spool'), 'spool');
    const { agent } = await deployment.addAgent('spooler', { env: { HOOP_SPOOL_DIR: spoolDir } });
    await deployment.addConnection('pg4', { agent: 'spooler', target: machinePostgres() });
    await agent.kill();
    // A segment whose first record fails its CRC, followed by another record: damage in the
    // middle of a file, not a torn tail.
    const existing = readdirSync(spoolDir)
      .map((n) => /^seg-(\d{16})\.spool$/.exec(n)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
    const first = Math.max(0, ...existing) + 1000;
    const name = `seg-${String(first).padStart(16, '0')}.spool`;
    const record = (seq: number, payload: string, crc: number) => {
      const body = Buffer.from(payload);
      const out = Buffer.alloc(16 + body.length);
      out.writeUInt32BE(body.length, 0);
      out.writeUInt32BE(crc, 4);
      out.writeBigUInt64BE(BigInt(seq), 8);
      body.copy(out, 16);
      return out;
    };
    writeFileSync(
      join(spoolDir, name),
      Buffer.concat([
        Buffer.from('HOOPSPL1', 'latin1'),
        record(first, '{"type":"statement"}', 0xdeadbeef),
        record(first + 1, '{"type":"statement"}', 0x12345678),
      ]),
    );
    await agent.start();
    assert.ok(existsSync(join(spoolDir, 'quarantine')));
    assert.ok(
      readdirSync(join(spoolDir, 'quarantine')).some((f) => f.startsWith(name)),
      'the corrupt segment was moved aside',
    );
    assert.ok(!existsSync(join(spoolDir, name)));
    // New sessions still record and upload.
    const conn = await deployment.connect('pg4');
    const client = new pg.Client({ connectionString: conn.url, connectionTimeoutMillis: 10_000 });
    await client.connect();
    await client.query('select 404 as after_quarantine');
    await client.end();
    await waitFor(
      async () => {
        const list = await deployment.api<{ id: string; connectionName: string }[]>(
          '/api/v1/sessions?limit=50',
        );
        const id = list.find((x) => x.connectionName === 'pg4')?.id;
        if (id === undefined) return undefined;
        const s = await deployment.api<SessionView>(`/api/v1/sessions/${id}`);
        return s.events.some((e) => e.text === 'select 404 as after_quarantine') ? s : undefined;
      },
      { timeoutMs: 30_000, what: 'the new session to be recorded after the quarantine' },
    );
  });
});
