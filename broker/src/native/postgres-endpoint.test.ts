/**
 * The native endpoint with real parts: broker (PGlite store), a real agent with the Postgres
 * engine, the machine's PostgreSQL as the target, and `pg` as a plain client that knows nothing
 * of hoop — the connection name is its user and a hoop token its password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, resolveLimits } from '@hoop/shared';
import pg from 'pg';
import type { Broker } from '../broker.js';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '../testing/index.js';
import {
  assertCancelsOnOwnConnection,
  assertRefusesBadLogins,
} from '../testing/pg-endpoint-checks.js';
import { startPostgresEndpoint } from './postgres-endpoint.js';

/** The machine's PostgreSQL as `local-pg`, behind a connected agent `near-db`. */
async function withLocalPg(t: TestBroker): Promise<void> {
  await t.startAgent('near-db');
  await addLocalPgConnection(t.broker, 'local-pg', 'near-db');
}

describe('native Postgres endpoint', () => {
  let t: TestBroker;
  let token: string;
  let port: number;

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-native-', pgListen: true });
    token = t.adminToken;
    port = t.broker.pgPort as number;
    await withLocalPg(t);
  });

  after(() => t.close());

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

  it('joins the hub in process, one tunnel per session, gone when the session ends', async () => {
    const hub = t.broker.hub;
    const before = hub.stats;
    const clients = [client(token), client(token)];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const during = hub.stats;
      assert.equal(during.clients, before.clients + 2);
      assert.equal(during.routes, before.routes + 2);
      const answers = await Promise.all(clients.map((c, i) => c.query('select $1::int as i', [i])));
      assert.deepEqual(
        answers.map((a) => a.rows[0]?.i),
        [0, 1],
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    for (let i = 0; i < 100 && hub.stats.clients !== before.clients; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(hub.stats, before);
  });

  it('refuses a wrong token with 28P01 and an unknown connection with 3D000', async () => {
    await assertRefusesBadLogins(client, token);
  });

  it('forwards a CancelRequest that arrives on its own connection', async () => {
    const c = client(token);
    await c.connect();
    try {
      await assertCancelsOnOwnConnection(c, port);
    } finally {
      await c.end();
    }
  });
});

describe('native Postgres endpoint with TLS', () => {
  const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
  let t: TestBroker | undefined;
  let broker: Broker;
  let token: string;

  /** A self-signed certificate for localhost in `dir`, as the broker's pg TLS files. */
  function selfSigned(dir: string) {
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
    return { pgTlsCert: join(dir, 'cert.pem'), pgTlsKey: join(dir, 'key.pem') };
  }

  before(async () => {
    if (!haveOpenssl) return;
    t = await startTestBroker({
      prefix: 'hoop-native-tls-',
      dataSubdir: 'data',
      pgListen: true,
      config: selfSigned,
    });
    broker = t.broker;
    token = t.adminToken;
    await withLocalPg(t);
  });

  after(() => t?.close());

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

describe('native Postgres endpoint handshake', () => {
  it('lets go of a client that does not finish its startup in time, and serves the next', async () => {
    const attached: string[] = [];
    const endpoint = await startPostgresEndpoint({
      host: '127.0.0.1',
      port: 0,
      attach: async (token) => {
        attached.push(token);
        return undefined;
      },
      limits: resolveLimits(),
      logger: createLogger({ level: 'error', write: () => {} }),
      handshakeTimeoutMs: 300,
    });
    try {
      const silent = connect(endpoint.port, '127.0.0.1');
      const received: Buffer[] = [];
      silent.on('data', (c: Buffer) => received.push(c));
      const started = Date.now();
      await new Promise<void>((resolve, reject) => {
        silent.on('close', () => resolve());
        silent.on('error', reject);
      });
      const waited = Date.now() - started;
      assert.ok(waited >= 250 && waited < 5_000, `closed after ${waited} ms`);
      const reply = Buffer.concat(received);
      assert.equal(String.fromCharCode(reply[0] ?? 0), 'E', 'a FATAL ErrorResponse, then close');
      // A client that does finish its startup is still served (here: its token is refused).
      await assert.rejects(
        new pg.Client({
          host: '127.0.0.1',
          port: endpoint.port,
          user: 'c',
          password: 'hoop_pat_wrong',
          database: 'x',
          ssl: false,
        }).connect(),
        (e: { code?: string }) => e.code === '28P01',
      );
      assert.deepEqual(attached, ['hoop_pat_wrong']);
    } finally {
      await endpoint.close();
    }
  });
});
