/**
 * The native endpoint with real parts: broker (PGlite store), a real agent with the Postgres
 * engine, the machine's PostgreSQL as the target, and `pg` as a plain client that knows nothing
 * of hoop — the connection name is its user and a hoop token its password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '@hoop/agent';
import { silentLogger } from '@hoop/shared';
import pg from 'pg';
import { type Broker, startBroker } from '../broker.js';

describe('native Postgres endpoint', () => {
  let dir: string;
  let broker: Broker;
  let agent: Agent;
  let token: string;
  let port: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-native-'));
    token = `hoop_pat_${randomBytes(24).toString('base64url')}`;
    broker = await startBroker(
      { listen: '127.0.0.1:0', pgListen: '127.0.0.1:0', dataDir: dir, adminToken: token },
      { logger: silentLogger },
    );
    port = broker.pgPort as number;
    const created = await broker.store.createAgent('near-db');
    await broker.store.createConnection({
      name: 'local-pg',
      agent: 'near-db',
      type: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'test',
      tls: 'disable',
    });
    agent = new Agent({ brokerUrl: broker.url, token: created.token, logger: silentLogger });
    agent.start();
    await agent.waitConnected(10_000);
  });

  after(async () => {
    await agent.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  const client = (password: string, user = 'local-pg') =>
    new pg.Client({ host: '127.0.0.1', port, user, password, database: 'test', ssl: false });

  it('runs queries for a client that holds only a hoop token', async () => {
    const c = client(token);
    await c.connect();
    try {
      const { rows } = await c.query('select current_user as who, $1::int + 1 as n', [41]);
      assert.deepEqual(rows, [{ who: 'postgres', n: 42 }]);
    } finally {
      await c.end();
    }
  });

  it('refuses a wrong token with 28P01 and an unknown connection with 3D000', async () => {
    await assert.rejects(
      client('hoop_pat_nope').connect(),
      (e: { code?: string; message?: string }) => {
        assert.equal(e.code, '28P01');
        assert.ok(!String(e.message).includes('hoop_pat_nope'));
        return true;
      },
    );
    await assert.rejects(
      client(token, 'no-such-connection').connect(),
      (e: { code?: string }) => e.code === '3D000',
    );
  });

  it('forwards a CancelRequest that arrives on its own connection', async () => {
    const c = client(token);
    await c.connect();
    try {
      const keyed = c as unknown as { processID: number; secretKey: number };
      const started = Date.now();
      const sleeping = c.query('select pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(keyed.processID, 8);
      cancel.writeInt32BE(keyed.secretKey, 12);
      await new Promise<void>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => s.end(cancel));
        s.on('close', () => resolve());
        s.on('error', reject);
      });
      await assert.rejects(sleeping, (e: { code?: string }) => e.code === '57014');
      assert.ok(Date.now() - started < 15_000);
      const { rows } = await c.query('select 1 as one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('native Postgres endpoint with TLS', () => {
  const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
  let dir: string;
  let broker: Broker;
  let agent: Agent;
  let token: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-native-tls-'));
    if (!haveOpenssl) return;
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    assert.equal(made.status, 0, String(made.stderr));
    token = `hoop_pat_${randomBytes(24).toString('base64url')}`;
    broker = await startBroker(
      {
        listen: '127.0.0.1:0',
        pgListen: '127.0.0.1:0',
        pgTlsCert: join(dir, 'cert.pem'),
        pgTlsKey: join(dir, 'key.pem'),
        dataDir: join(dir, 'data'),
        adminToken: token,
      },
      { logger: silentLogger },
    );
    const created = await broker.store.createAgent('near-db');
    await broker.store.createConnection({
      name: 'local-pg',
      agent: 'near-db',
      type: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'test',
      tls: 'disable',
    });
    agent = new Agent({ brokerUrl: broker.url, token: created.token, logger: silentLogger });
    agent.start();
    await agent.waitConnected(10_000);
  });

  after(async () => {
    await agent?.stop();
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('speaks TLS to clients that ask for it (sslmode=require) and plaintext to others', {
    skip: !haveOpenssl && 'openssl is not installed',
  }, async () => {
    const secure = new pg.Client({
      host: '127.0.0.1',
      port: broker.pgPort as number,
      user: 'local-pg',
      password: token,
      database: 'test',
      ssl: { rejectUnauthorized: false },
    });
    await secure.connect();
    try {
      const stream = (secure as unknown as { connection: { stream: { encrypted?: boolean } } })
        .connection.stream;
      assert.equal(stream.encrypted, true, 'the client-broker hop is encrypted');
      assert.deepEqual((await secure.query('select 7 as n')).rows, [{ n: 7 }]);
    } finally {
      await secure.end();
    }
    const plain = new pg.Client({
      host: '127.0.0.1',
      port: broker.pgPort as number,
      user: 'local-pg',
      password: token,
      database: 'test',
      ssl: false,
    });
    await plain.connect();
    try {
      assert.deepEqual((await plain.query('select 8 as n')).rows, [{ n: 8 }]);
    } finally {
      await plain.end();
    }
  });
});
