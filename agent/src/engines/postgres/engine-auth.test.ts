/**
 * PostgresEngine logging in to private PostgreSQL servers that demand a password
 * (scram-sha-256, md5, cleartext) and one that speaks TLS, started by @hoop/shared/testing.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Duplex, Transform } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  type PostgresInstance,
  type PostgresInstanceAuth,
  startPostgresInstance,
} from '@hoop/shared/testing';
import { PostgresEngine } from './engine.js';
import { PgFailure } from './errors.js';
import {
  assertCancelWorks,
  assertFailed,
  connectError,
  connectThrough,
  pgTarget,
  recordingLogger,
  startEngineServer,
} from './test-harness.js';

const PASSWORD = 's3cret-Pässword with spaces';

function targetOf(instance: PostgresInstance, tls: 'disable' | 'prefer' | 'require' = 'disable') {
  return pgTarget({
    host: instance.host,
    port: instance.port,
    user: instance.user,
    database: instance.database,
    tls,
  });
}

const expectedMethod: Record<PostgresInstanceAuth, string> = {
  'scram-sha-256': 'scram-sha-256',
  md5: 'md5',
  password: 'cleartext',
};

for (const auth of ['scram-sha-256', 'md5', 'password'] as const) {
  describe(`PostgresEngine against a private PostgreSQL with ${auth} auth`, () => {
    const engine = new PostgresEngine();
    let instance: PostgresInstance;

    before(async () => {
      instance = await startPostgresInstance({ auth, password: PASSWORD, user: 'hoop_target' });
    });
    after(async () => {
      await engine.close();
      await instance?.stop();
    });

    it('logs in with the credential; the client never sends or is asked for a password', async () => {
      const fromClient: Buffer[] = [];
      const tapClient = (socket: Socket): Duplex => {
        const tap = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            fromClient.push(chunk);
            callback(null, chunk);
          },
        });
        socket.pipe(tap);
        return Duplex.from({ readable: tap, writable: socket });
      };
      const { logger, lines } = recordingLogger();
      await using server = await startEngineServer({
        engine,
        target: targetOf(instance),
        password: PASSWORD,
        wrapClient: tapClient,
        logger,
      });
      const { client, passwordAsked } = await connectThrough(server.port);
      const { rows } = await client.query('select current_user as u, 1 + 1 as two');
      assert.equal(rows[0].u, 'hoop_target');
      assert.equal(rows[0].two, 2);
      await client.end();
      assert.deepEqual(await server.outcome(0), { ok: true });
      const login = lines.find((line) => line['msg'] === 'authenticated to postgres target');
      assert.equal(login?.['method'], expectedMethod[auth]);
      assert.equal(JSON.stringify(lines).includes(PASSWORD), false, 'no log line has the password');
      assert.equal(passwordAsked(), false);
      const sent = Buffer.concat(fromClient);
      assert.ok(sent.length > 0);
      assert.equal(sent.includes(Buffer.from(PASSWORD)), false);
      assert.equal(sent.includes(Buffer.from('client-side-password')), false);
      // No PasswordMessage/SASL response ('p') ever came from the client.
      assert.equal(sent.includes(Buffer.from([0x70, 0x00, 0x00])), false);
    });

    it("reports a wrong credential as the target's rejection, without the password", async () => {
      const wrong = 'wrong-password-value';
      await using server = await startEngineServer({
        engine,
        target: targetOf(instance),
        password: wrong,
      });
      const err = await connectError(server.port);
      assert.ok(err.code === '28P01' || err.code === '28000', `SQLSTATE ${err.code}`);
      assert.match(err.message, /^hoop: the target rejected the connection's credential/);
      assert.equal(err.message.includes(wrong), false);
      const failure = assertFailed(
        await server.outcome(0),
        'TARGET_AUTH_FAILED',
        PgFailure.authRejected,
      );
      assert.equal(failure.message.includes(wrong), false);
    });

    it('fails with TARGET_AUTH_FAILED when the connection has no password', async () => {
      await using server = await startEngineServer({
        engine,
        target: targetOf(instance),
        password: undefined,
      });
      const err = await connectError(server.port);
      assert.equal(err.code, '28000');
      assertFailed(await server.outcome(0), 'TARGET_AUTH_FAILED', PgFailure.passwordRequired);
    });
  });
}

describe('PostgresEngine against a private PostgreSQL with TLS', () => {
  const engine = new PostgresEngine();
  let instance: PostgresInstance;

  before(async () => {
    instance = await startPostgresInstance({
      auth: 'scram-sha-256',
      password: PASSWORD,
      ssl: true,
    });
  });
  after(async () => {
    await engine.close();
    await instance?.stop();
  });

  const sslInUse = async (port: number): Promise<boolean> => {
    const { client } = await connectThrough(port);
    const { rows } = await client.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    await client.end();
    return rows[0].ssl as boolean;
  };

  it('uses TLS for prefer (certificate not verified)', async () => {
    await using server = await startEngineServer({
      engine,
      target: targetOf(instance, 'prefer'),
      password: PASSWORD,
    });
    assert.equal(await sslInUse(server.port), true);
  });

  it('verifies the certificate for require, and connects when it is trusted', async () => {
    await using untrusted = await startEngineServer({
      engine,
      target: targetOf(instance, 'require'),
      password: PASSWORD,
    });
    const err = await connectError(untrusted.port);
    assert.equal(err.code, '08001');
    assert.match(err.message, /TLS handshake failed/);
    assertFailed(await untrusted.outcome(0), 'TARGET_UNREACHABLE', PgFailure.tlsFailed);

    const trusting = new PostgresEngine({ targetTls: { ca: instance.sslCertificate } });
    await using trusted = await startEngineServer({
      engine: trusting,
      target: targetOf(instance, 'require'),
      password: PASSWORD,
    });
    assert.equal(await sslInUse(trusted.port), true);
  });

  it('cancels a query on a TLS target', async () => {
    const trusting = new PostgresEngine({ targetTls: { ca: instance.sslCertificate } });
    await using server = await startEngineServer({
      engine: trusting,
      target: targetOf(instance, 'require'),
      password: PASSWORD,
    });
    const { client } = await connectThrough(server.port);
    const { client: watcher } = await connectThrough(server.port);
    await assertCancelWorks(server.port, client, watcher);
    await client.end();
    await watcher.end();
    assert.deepEqual(await server.outcome(0), { ok: true });
  });
});
