/**
 * The admin surface: `hoop admin connections create|list|show|delete` and the REST API behind it.
 * A stored password goes in once and never comes out — not in list/show (JSON or table), not in
 * REST responses, not in the broker's log, and not in plaintext anywhere in its data dir — and
 * the broker serves a valid OpenAPI 3.1 document.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ConnectionView, Deployment } from './support/deployment.js';
import { runHoop, runHoopJson } from './support/hoop.js';

/** Every regular file under `dir` that contains `needle`. */
async function filesContaining(dir: string, needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const parent = (entry as { parentPath?: string; path?: string }).parentPath ?? entry.path;
    const path = join(parent as string, entry.name);
    if ((await readFile(path)).includes(needle)) hits.push(path);
  }
  return hits;
}

describe('admin: connections and the REST API never reveal a secret', { timeout: 120_000 }, () => {
  const password = `e2e-${randomBytes(12).toString('hex')}`;
  let d: Deployment | undefined;

  before(
    async () => {
      d = await Deployment.start();
      await d.createAgent('edge');
      const target = { host: 'db.internal', port: 5432, user: 'app', database: 'orders' };
      await d.addConnection('vault', { agent: 'edge', target, password: { env: password } });
      await d.addConnection('by-ref', {
        agent: 'edge',
        target,
        password: { ref: 'env:ORDERS_DB_PASSWORD' },
      });
    },
    { timeout: 60_000 },
  );

  after(async () => {
    await d?.dispose();
  });

  test('connections list (JSON and table) shows how the credential is held, never the secret', async () => {
    const list = await runHoopJson<ConnectionView[]>(
      ['admin', 'connections', 'list'],
      d!.adminEnv(),
    );
    assert.ok(!JSON.stringify(list).includes(password));
    const byName = new Map(list.map((c) => [c.name, c]));
    assert.equal(byName.get('vault')?.credential, 'stored');
    assert.equal(byName.get('by-ref')?.credential, 'ref:env:ORDERS_DB_PASSWORD');
    assert.equal(byName.get('vault')?.agentOnline, false);
    for (const c of list) assert.ok(!('password' in c), `${c.name} has a password field`);

    const table = await runHoop(['admin', 'connections', 'list'], d!.adminEnv());
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /vault/);
    assert.ok(!table.stdout.includes(password));
  });

  test('connections show, and show of an unknown name exits 4', async () => {
    const shown = await runHoopJson<ConnectionView>(
      ['admin', 'connections', 'show', 'vault'],
      d!.adminEnv(),
    );
    assert.deepEqual(
      {
        name: shown.name,
        type: shown.type,
        agent: shown.agent,
        host: shown.host,
        port: shown.port,
        user: shown.user,
        database: shown.database,
        credential: shown.credential,
      },
      {
        name: 'vault',
        type: 'postgres',
        agent: 'edge',
        host: 'db.internal',
        port: 5432,
        user: 'app',
        database: 'orders',
        credential: 'stored',
      },
    );
    assert.ok(!JSON.stringify(shown).includes(password));
    const missing = await runHoop(['admin', 'connections', 'show', 'nope'], d!.adminEnv());
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /^hint: /m);
  });

  test('REST responses carry no secret, and a bad token gets 401 with a JSON error', async () => {
    const one = await d!.api<Record<string, unknown>>('/api/v1/connections/vault');
    assert.ok(!JSON.stringify(one).includes(password));
    const all = await d!.api<unknown[]>('/api/v1/connections');
    assert.ok(!JSON.stringify(all).includes(password));

    const denied = await fetch(new URL('/api/v1/connections', d!.broker.url), {
      headers: { authorization: 'Bearer hoop_wrong' },
    });
    assert.equal(denied.status, 401);
    const body = (await denied.json()) as { error: { code: string; hint: string } };
    assert.equal(body.error.code, 'AUTH_INVALID_TOKEN');
    assert.ok(body.error.hint.length > 0);
  });

  test('the password is neither logged nor stored in plaintext in the data dir', async () => {
    const broker = d!.broker;
    assert.ok(!broker.process.stderr.includes(password), 'the broker logged the password');
    assert.ok(!broker.process.stdout.includes(password));
    // A graceful stop flushes the embedded store to disk; then look at every byte of it.
    const stopped = await broker.process.stop();
    assert.equal(stopped.killed, false);
    try {
      const control = await filesContaining(broker.dataDir, Buffer.from('db.internal'));
      assert.ok(control.length > 0, 'the scan finds the stored connection (control)');
      const hits = await filesContaining(broker.dataDir, Buffer.from(password));
      assert.deepEqual(hits, [], 'files holding the plaintext password');
    } finally {
      await broker.startAgain();
    }
    // The restarted broker still has the connection and its (encrypted) credential.
    const shown = await d!.api<{ credential: string }>('/api/v1/connections/vault');
    assert.equal(shown.credential, 'stored');
  });

  test('/api/v1/openapi.json is an OpenAPI 3.1.0 document describing the API', async () => {
    const response = await fetch(new URL('/api/v1/openapi.json', d!.broker.url), {
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    const doc = JSON.parse(await response.text()) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, unknown>;
    };
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    assert.ok('/api/v1/connections' in doc.paths, Object.keys(doc.paths).join(', '));
    assert.ok('/api/v1/agents' in doc.paths);
  });

  test('connections delete, then show exits 4', async () => {
    const deleted = await runHoopJson<{ deleted: string }>(
      ['admin', 'connections', 'delete', 'by-ref'],
      d!.adminEnv(),
    );
    assert.equal(deleted.deleted, 'by-ref');
    const gone = await runHoop(['admin', 'connections', 'show', 'by-ref', '--json'], d!.adminEnv());
    assert.equal(gone.code, 4);
  });
});
