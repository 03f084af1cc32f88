/**
 * PostgresEngine against scripted fake targets: the misbehaviours a real server will not
 * produce on demand (a forged SCRAM signature, skipped SASL steps, hang-ups, oversized or
 * injected bytes) and an exact check of the cancel-key mapping.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresEngine } from './engine.js';
import { PgFailure } from './errors.js';
import { AuthCode, BackendCode, ErrorField, FrontendCode } from './messages.js';
import { parseErrorFields, readCString } from './reader.js';
import {
  assertFailed,
  pgTarget,
  RawClient,
  type SessionOutcome,
  startEngineServer,
} from './test-harness.js';
import {
  backendKeyData,
  cancelRequest,
  encodeMessage,
  startupMessage,
  terminate,
} from './writer.js';

type Script = (peer: RawClient) => Promise<void>;

interface FakeTarget {
  readonly port: number;
  readonly server: Server;
}

async function startFakeTarget(script: Script): Promise<FakeTarget> {
  const server = createServer((socket) => {
    const peer = RawClient.wrap(socket);
    script(peer).catch(() => peer.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return { port: address !== null && typeof address === 'object' ? address.port : 0, server };
}

function authRequest(code: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(code, 0);
  return encodeMessage(BackendCode.authentication, Buffer.concat([head, extra]));
}

const parameterStatus = (name: string, value: string): Buffer =>
  encodeMessage(BackendCode.parameterStatus, Buffer.from(`${name}\0${value}\0`));
const readyForQuery = (): Buffer => encodeMessage(BackendCode.readyForQuery, Buffer.from('I'));

/** Connects a raw client through an engine to `target`, sends a startup, returns the first answer. */
async function startThrough(
  engine: PostgresEngine,
  target: FakeTarget,
  tls: 'disable' | 'require' | 'prefer' = 'disable',
): Promise<{
  fields: Map<number, string>;
  outcome: Promise<SessionOutcome>;
  close: () => Promise<void>;
}> {
  const proxy = await startEngineServer({
    engine,
    target: pgTarget({ host: '127.0.0.1', port: target.port, tls }),
    password: 'secret',
  });
  const client = await RawClient.connect(proxy.port);
  client.send(startupMessage([['user', 'x']]));
  const message = await client.readMessage();
  assert.equal(message.code, BackendCode.errorResponse, 'the client is told with an ErrorResponse');
  await client.waitClosed();
  return {
    fields: parseErrorFields(message.body),
    outcome: proxy.outcome(0),
    close: () => proxy.close(),
  };
}

describe('PostgresEngine against fake targets', () => {
  const engine = new PostgresEngine({ handshakeTimeoutMs: 1_000 });
  const servers: Server[] = [];
  const fake = async (script: Script): Promise<FakeTarget> => {
    const target = await startFakeTarget(script);
    servers.push(target.server);
    return target;
  };
  after(() => {
    for (const server of servers) server.close();
  });

  it('rejects a target whose SCRAM server signature is forged', async () => {
    let clientFirst = '';
    const target = await fake(async (peer) => {
      await peer.readStartup();
      peer.send(authRequest(AuthCode.sasl, Buffer.from('SCRAM-SHA-256\0\0')));
      const initial = await peer.readMessage();
      assert.equal(initial.code, FrontendCode.password);
      const mechanism = readCString(initial.body, 0);
      assert.equal(mechanism?.value, 'SCRAM-SHA-256');
      clientFirst = initial.body.toString('utf8', (mechanism?.next ?? 0) + 4);
      const nonce = /r=([^,]+)$/.exec(clientFirst)?.[1] ?? '';
      const salt = Buffer.from('salt-salt-salt').toString('base64');
      peer.send(
        authRequest(AuthCode.saslContinue, Buffer.from(`r=${nonce}server,s=${salt},i=4096`)),
      );
      await peer.readMessage();
      peer.send(
        authRequest(AuthCode.saslFinal, Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`)),
      );
      peer.send(authRequest(AuthCode.ok));
      await peer.closed;
    });
    const { fields, outcome, close } = await startThrough(engine, target);
    assert.match(clientFirst, /^n,,n=,r=[A-Za-z0-9+/=]{24}$/);
    assert.equal(fields.get(ErrorField.severity), 'FATAL');
    assert.equal(fields.get(ErrorField.code), '28000');
    assert.match(fields.get(ErrorField.message) ?? '', /server signature does not match/);
    assertFailed(await outcome, 'TARGET_AUTH_FAILED', PgFailure.scramFailed);
    await close();
  });

  it('rejects a target that skips SCRAM and says AuthenticationOk', async () => {
    const target = await fake(async (peer) => {
      await peer.readStartup();
      peer.send(authRequest(AuthCode.sasl, Buffer.from('SCRAM-SHA-256\0\0')));
      await peer.readMessage();
      peer.send(authRequest(AuthCode.ok));
      await peer.closed;
    });
    const { fields, outcome, close } = await startThrough(engine, target);
    assert.equal(fields.get(ErrorField.code), '08006');
    assertFailed(await outcome, 'TARGET_PROTOCOL_ERROR', PgFailure.unexpectedMessage);
    await close();
  });

  it('refuses authentication methods it does not speak', async () => {
    const target = await fake(async (peer) => {
      await peer.readStartup();
      peer.send(authRequest(AuthCode.gss));
      await peer.closed;
    });
    const { fields, outcome, close } = await startThrough(engine, target);
    assert.equal(fields.get(ErrorField.code), '0A000');
    assertFailed(await outcome, 'TARGET_AUTH_FAILED', PgFailure.authUnsupported);
    await close();
  });

  it('reports a target that hangs up during the handshake', async () => {
    const target = await fake(async (peer) => {
      await peer.readStartup();
      peer.destroy();
    });
    const { fields, outcome, close } = await startThrough(engine, target);
    assert.equal(fields.get(ErrorField.code), '08006');
    assertFailed(await outcome, 'TARGET_UNREACHABLE', PgFailure.closed);
    await close();
  });

  it('bounds the size of a target message during the handshake', async () => {
    const target = await fake(async (peer) => {
      await peer.readStartup();
      peer.send(Buffer.from('5200f00000', 'hex'));
      await peer.closed;
    });
    const { outcome, close } = await startThrough(engine, target);
    assertFailed(await outcome, 'TARGET_PROTOCOL_ERROR', PgFailure.messageTooLarge);
    await close();
  });

  it('times out a target that never answers', async () => {
    const target = await fake(async (peer) => {
      await peer.readStartup();
      await peer.closed;
    });
    const { fields, outcome, close } = await startThrough(engine, target);
    assert.equal(fields.get(ErrorField.code), '08001');
    assertFailed(await outcome, 'TARGET_UNREACHABLE', PgFailure.timeout);
    await close();
  });

  for (const [name, answer] of [
    ['an invalid SSL answer', 'X'],
    ['bytes injected after the SSL answer', 'NZ'],
  ] as const) {
    it(`rejects ${name}`, async () => {
      const target = await fake(async (peer) => {
        const packet = await peer.readStartup();
        assert.equal(packet.kind, 'ssl-request');
        peer.send(Buffer.from(answer));
        await peer.closed;
      });
      const { outcome, close } = await startThrough(engine, target, 'prefer');
      assertFailed(await outcome, 'TARGET_PROTOCOL_ERROR', PgFailure.malformed);
      await close();
    });
  }

  it('maps the agent cancel key to the target key, and only that key', async () => {
    const cancels: Array<{ processId: number; secretKey: string }> = [];
    const target = await fake(async (peer) => {
      const packet = await peer.readStartup();
      if (packet.kind === 'cancel-request') {
        cancels.push({ processId: packet.processId, secretKey: packet.secretKey.toString('hex') });
        peer.destroy();
        return;
      }
      peer.send(
        Buffer.concat([
          authRequest(AuthCode.ok),
          parameterStatus('server_version', '99.0'),
          backendKeyData(777, Buffer.from('cafebabe', 'hex')),
          readyForQuery(),
        ]),
      );
      const message = await peer.readMessage();
      assert.equal(message.code, FrontendCode.terminate);
      peer.destroy();
    });
    await using proxy = await startEngineServer({
      engine,
      target: pgTarget({ host: '127.0.0.1', port: target.port }),
      password: undefined,
    });
    const client = await RawClient.connect(proxy.port);
    client.send(startupMessage([['user', 'x']]));
    const messages = await client.readUntil(BackendCode.readyForQuery);
    assert.deepEqual(
      messages.map((m) => m.code),
      [
        BackendCode.authentication,
        BackendCode.parameterStatus,
        BackendCode.backendKeyData,
        BackendCode.readyForQuery,
      ],
    );
    const key = messages[2]?.body ?? Buffer.alloc(8);
    const agentPid = key.readInt32BE(0);
    const agentSecret = key.subarray(4);
    assert.equal(agentSecret.length, 4);
    assert.notEqual(agentPid, 777);
    assert.notEqual(agentSecret.toString('hex'), 'cafebabe');

    const wrong = Buffer.from(agentSecret);
    wrong[0] = (wrong[0] as number) ^ 0xff;
    for (const secret of [wrong, agentSecret]) {
      const canceller = await RawClient.connect(proxy.port);
      canceller.send(cancelRequest(agentPid, secret));
      await canceller.waitClosed();
    }
    for (let i = 0; cancels.length === 0 && i < 100; i++) await sleep(20);
    await sleep(50);
    assert.deepEqual(cancels, [{ processId: 777, secretKey: 'cafebabe' }]);

    client.send(terminate());
    await client.waitClosed();
    assert.deepEqual(await proxy.outcome(0), { ok: true });
  });
});
