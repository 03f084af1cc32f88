/**
 * PostgresEngine against the machine's PostgreSQL (127.0.0.1:5432, trust, user postgres,
 * database test), driven by the real `pg` client and by raw protocol bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresEngine } from './engine.js';
import { PgFailure } from './errors.js';
import { AuthCode, BackendCode, ErrorField } from './messages.js';
import { parseErrorFields } from './reader.js';
import {
  assertCancelWorks,
  assertFailed,
  closedPort,
  connectError,
  connectThrough,
  type EngineServer,
  pgTarget,
  RawClient,
  startEngineServer,
} from './test-harness.js';
import { cancelRequest, encodeMessage, startupMessage, terminate } from './writer.js';

const SYSTEM = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' } as const;

function errorFields(body: Buffer): { code?: string; message?: string; severity?: string } {
  const fields = parseErrorFields(body);
  return {
    code: fields.get(ErrorField.code),
    message: fields.get(ErrorField.message),
    severity: fields.get(ErrorField.severity),
  };
}

describe('PostgresEngine against the local PostgreSQL (trust)', () => {
  const engine = new PostgresEngine();
  let server: EngineServer;
  let sessions = 0;
  /** The index the next accepted session will have. */
  const next = (): number => sessions++;

  before(async () => {
    server = await startEngineServer({ engine, target: pgTarget(SYSTEM), password: undefined });
  });
  after(async () => {
    await server.close();
    await engine.close();
  });

  it('runs queries as the target user and database, forwarding application_name', async () => {
    const index = next();
    const { client, passwordAsked } = await connectThrough(server.port, {
      applicationName: 'hoop-app',
    });
    const { rows } = await client.query(
      'select current_user as u, current_database() as d, pg_backend_pid() as pid, current_setting($1) as app',
      ['application_name'],
    );
    assert.deepEqual(
      { u: rows[0].u, d: rows[0].d, app: rows[0].app },
      { u: 'postgres', d: 'test', app: 'hoop-app' },
    );
    const { processID } = client as unknown as { processID: number };
    assert.notEqual(processID, rows[0].pid, 'the client sees an agent key, not the backend pid');
    assert.equal(engine.cancelKeys >= 1, true);
    assert.equal(passwordAsked(), false, 'the client was never asked for a password');
    await client.end();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it('streams a large result through the relay', async () => {
    const index = next();
    const { client } = await connectThrough(server.port);
    const { rows } = await client.query(
      "select i, repeat('x', 100000) as pad from generate_series(1, 200) as i",
    );
    assert.equal(rows.length, 200);
    assert.equal(rows[199].pad.length, 100_000);
    await client.end();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it('cancels a running query with a CancelRequest on a second connection', async () => {
    const index = next();
    const { client } = await connectThrough(server.port);
    const watcherIndex = next();
    const { client: watcher } = await connectThrough(server.port);
    next(); // the cancel connection
    await assertCancelWorks(server.port, client, watcher);
    await client.end();
    await watcher.end();
    assert.deepEqual(await server.outcome(index), { ok: true });
    assert.deepEqual(await server.outcome(watcherIndex), { ok: true });
  });

  it('ignores a CancelRequest with an unknown key, answering nothing', async () => {
    const index = next();
    const raw = await RawClient.connect(server.port);
    raw.send(cancelRequest(12345, Buffer.from('abcd')));
    await raw.waitClosed();
    assert.equal(raw.pending.length, 0);
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it("answers SSLRequest and GSSENCRequest with 'N', then serves the session in plaintext", async () => {
    const index = next();
    const raw = await RawClient.connect(server.port);
    raw.send(Buffer.from('0000000804d21630', 'hex')); // GSSENCRequest
    assert.equal((await raw.readBytes(1)).toString(), 'N');
    raw.send(Buffer.from('0000000804d2162f', 'hex')); // SSLRequest
    assert.equal((await raw.readBytes(1)).toString(), 'N');
    raw.send(
      startupMessage([
        ['user', 'whoever'],
        ['database', 'whatever'],
      ]),
    );
    const messages = await raw.readUntil(BackendCode.readyForQuery);
    const [auth] = messages;
    assert.equal(auth?.code, BackendCode.authentication);
    assert.equal(auth?.body.readInt32BE(0), AuthCode.ok);
    assert.equal(messages.filter((m) => m.code === BackendCode.backendKeyData).length, 1);
    assert.ok(messages.some((m) => m.code === BackendCode.parameterStatus));
    raw.send(encodeMessage(0x51, Buffer.from('select 42\0')));
    const result = await raw.readUntil(BackendCode.readyForQuery);
    const row = result.find((m) => m.code === BackendCode.dataRow);
    assert.equal(row?.body.toString('utf8', 6), '42');
    raw.send(terminate());
    await raw.waitClosed();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it('accepts a startup message split into single bytes', async () => {
    const index = next();
    const raw = await RawClient.connect(server.port);
    for (const byte of startupMessage([
      ['user', 'x'],
      ['application_name', 'bytewise'],
    ])) {
      raw.send(Buffer.from([byte]));
      await sleep(1);
    }
    const messages = await raw.readUntil(BackendCode.readyForQuery);
    assert.equal(messages[0]?.code, BackendCode.authentication);
    raw.send(terminate());
    await raw.waitClosed();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it('answers a 3.2 startup with NegotiateProtocolVersion 3.0 and the unknown options', async () => {
    const index = next();
    const raw = await RawClient.connect(server.port);
    const packet = startupMessage([
      ['user', 'x'],
      ['_pq_.test_option', 'on'],
    ]);
    packet.writeInt32BE(196610, 4);
    raw.send(packet);
    const messages = await raw.readUntil(BackendCode.readyForQuery);
    const [negotiate, auth] = messages;
    assert.equal(negotiate?.code, BackendCode.negotiateProtocolVersion);
    assert.equal(negotiate?.body.readInt32BE(0), 0);
    assert.equal(negotiate?.body.readInt32BE(4), 1);
    assert.equal(negotiate?.body.toString('utf8', 8), '_pq_.test_option\0');
    assert.equal(auth?.code, BackendCode.authentication);
    raw.send(terminate());
    await raw.waitClosed();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  const badStartups: Array<[string, Buffer, string, string, string]> = [
    [
      'an oversized startup packet',
      Buffer.from('0000ffff00030000', 'hex'),
      '08P01',
      'INVALID_REQUEST',
      PgFailure.startupTooLarge,
    ],
    [
      'HTTP',
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      '08P01',
      'INVALID_REQUEST',
      PgFailure.startupTooLarge,
    ],
    [
      'protocol 2.0',
      Buffer.from('000000090002000000', 'hex'),
      '0A000',
      'INVALID_REQUEST',
      PgFailure.unsupportedProtocol,
    ],
    [
      'a replication connection',
      startupMessage([
        ['user', 'x'],
        ['replication', 'database'],
      ]),
      '42501',
      'AUTH_FORBIDDEN',
      PgFailure.replicationRefused,
    ],
  ];
  for (const [name, bytes, sqlstate, code, reason] of badStartups) {
    it(`refuses ${name} with a FATAL ${sqlstate} and ends the stream`, async () => {
      const index = next();
      const raw = await RawClient.connect(server.port);
      raw.send(bytes);
      const message = await raw.readMessage();
      assert.equal(message.code, BackendCode.errorResponse);
      const fields = errorFields(message.body);
      assert.equal(fields.severity, 'FATAL');
      assert.equal(fields.code, sqlstate);
      assert.match(fields.message ?? '', /^hoop: /);
      await raw.waitClosed();
      assertFailed(await server.outcome(index), code, reason);
    });
  }

  it('resolves quietly when the client leaves before sending anything', async () => {
    const index = next();
    const raw = await RawClient.connect(server.port);
    raw.destroy();
    assert.deepEqual(await server.outcome(index), { ok: true });
  });

  it('reports a database the target does not have with its own SQLSTATE', async () => {
    await using other = await startEngineServer({
      engine,
      target: pgTarget({ ...SYSTEM, database: 'hoop_no_such_database' }),
      password: undefined,
    });
    const err = await connectError(other.port);
    assert.equal(err.code, '3D000');
    assert.match(err.message, /^hoop: the target refused the session: .*hoop_no_such_database/);
    assertFailed(await other.outcome(0), 'TARGET_AUTH_FAILED', PgFailure.sessionRefused);
  });

  it('tells the client 08001 when the target is unreachable', async () => {
    const port = await closedPort();
    await using other = await startEngineServer({
      engine,
      target: pgTarget({ ...SYSTEM, port }),
      password: undefined,
    });
    const err = await connectError(other.port);
    assert.equal(err.code, '08001');
    assert.match(
      err.message,
      new RegExp(`^hoop: could not reach target 127\\.0\\.0\\.1:${port}: ECONNREFUSED`),
    );
    assertFailed(await other.outcome(0), 'TARGET_UNREACHABLE', PgFailure.dialFailed);
  });

  it('fails tls=require against a target without TLS, and falls back for prefer', async () => {
    await using required = await startEngineServer({
      engine,
      target: pgTarget({ ...SYSTEM, tls: 'require' }),
      password: undefined,
    });
    const err = await connectError(required.port);
    assert.equal(err.code, '08001');
    assertFailed(await required.outcome(0), 'TARGET_UNREACHABLE', PgFailure.tlsRefused);

    await using preferred = await startEngineServer({
      engine,
      target: pgTarget({ ...SYSTEM, tls: 'prefer' }),
      password: undefined,
    });
    const { client } = await connectThrough(preferred.port);
    const { rows } = await client.query('select 1 as x');
    assert.equal(rows[0].x, 1);
    await client.end();
    assert.deepEqual(await preferred.outcome(0), { ok: true });
  });

  it('ends the session when its signal aborts', async () => {
    await using other = await startEngineServer({
      engine,
      target: pgTarget(SYSTEM),
      password: undefined,
    });
    const { client } = await connectThrough(other.port);
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    other.abortAll();
    await ended;
    assert.deepEqual(await other.outcome(0), { ok: true });
  });

  it('times out a client that never sends its startup message', async () => {
    const quick = new PostgresEngine({ handshakeTimeoutMs: 200 });
    await using other = await startEngineServer({
      engine: quick,
      target: pgTarget(SYSTEM),
      password: undefined,
    });
    const raw = await RawClient.connect(other.port);
    const message = await raw.readMessage();
    assert.equal(errorFields(message.body).code, '08P01');
    await raw.waitClosed();
    assertFailed(await other.outcome(0), 'INVALID_REQUEST', PgFailure.timeout);
  });

  it('removes cancel keys when sessions end', async () => {
    await sleep(50);
    assert.equal(engine.cancelKeys, 0);
  });
});
