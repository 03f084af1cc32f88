/**
 * The tunnel path in one process: a real broker (PGlite store, real HTTP/WebSocket server), a
 * real agent and the CLI's tunnel client, with an echo engine standing in for the target so the
 * relay itself is what's measured: integrity, flow control, fairness, and limits.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, type Engine, EngineRegistry, type EngineSession } from '@hoop/agent';
import { type Broker, startBroker } from '@hoop/broker';
import {
  HoopError,
  type Policy,
  silentLogger,
  TunnelClient,
  type TunnelStream,
} from '@hoop/shared';

class EchoEngine implements Engine {
  readonly type = 'postgres' as const;
  readonly policies: Policy[] = [];
  serve(session: EngineSession): Promise<void> {
    this.policies.push(session.policy);
    return new Promise((resolve) => {
      session.client.on('data', (chunk: Buffer) => {
        if (chunk.toString().startsWith('audit:')) {
          session.audit({
            type: 'statement',
            session: session.sessionId,
            at: Date.now(),
            text: chunk.toString().slice(6),
            durationMs: 1,
          });
        }
      });
      session.client.pipe(session.client);
      session.client.on('close', () => resolve());
    });
  }
}

function digest(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(stream: TunnelStream, bytes: number, delayMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    got += (chunk as Buffer).length;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (got >= bytes) break;
  }
  return Buffer.concat(chunks);
}

describe('tunnel relay (broker + agent + CLI client, in process)', () => {
  let dir: string;
  let broker: Broker;
  let agent: Agent;
  let adminToken: string;
  const echo = new EchoEngine();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-tunnel-'));
    adminToken = `hoop_pat_${randomBytes(24).toString('base64url')}`;
    broker = await startBroker(
      { listen: '127.0.0.1:0', dataDir: dir, adminToken },
      { logger: silentLogger },
    );
    const { token } = await broker.store.createAgent('echo-agent');
    await broker.store.createConnection({
      name: 'echo',
      agent: 'echo-agent',
      type: 'postgres',
      host: '127.0.0.1',
      port: 1,
      user: 'x',
      database: 'x',
    });
    const engines = new EngineRegistry();
    engines.register(echo);
    agent = new Agent({ brokerUrl: broker.url, token, logger: silentLogger, engines });
    agent.start();
    await agent.waitConnected(10_000);
  });

  after(async () => {
    await agent.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries 16 MiB both ways intact through a slow reader', async () => {
    const client = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      const { stream } = await client.open({ t: 'open', connection: 'echo' });
      const payload = randomBytes(16 * 1024 * 1024);
      const reading = collect(stream, payload.length, 1);
      stream.write(payload);
      const echoed = await reading;
      assert.equal(echoed.length, payload.length);
      assert.equal(digest(echoed), digest(payload));
      stream.destroy();
    } finally {
      client.close();
    }
  });

  it('keeps other streams moving while one stream is not read at all', async () => {
    const client = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      const stuck = (await client.open({ t: 'open', connection: 'echo' })).stream;
      stuck.pause();
      // Fill the stuck stream far past one window: its writes must block, not buffer anywhere.
      let blocked = false;
      for (let i = 0; i < 64; i++) if (!stuck.write(Buffer.alloc(64 * 1024))) blocked = true;
      assert.ok(blocked, 'writes to a stream nobody reads must report backpressure');
      const busy = (await client.open({ t: 'open', connection: 'echo' })).stream;
      const payload = randomBytes(4 * 1024 * 1024);
      const reading = collect(busy, payload.length);
      busy.write(payload);
      assert.equal(digest(await reading), digest(payload));
      // The stuck stream holds at most its window in flight; the rest waits at the writer.
      assert.ok(stuck.writableLength > 0, 'the unread stream keeps its excess at the writer');
      assert.ok(broker.hub.stats.routes >= 2);
      stuck.destroy();
      busy.destroy();
    } finally {
      client.close();
    }
  });

  it('cuts off a client that sends past its window (WINDOW_EXCEEDED) and keeps serving others', async () => {
    const rogue = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    const endpoint = await rogue.ready();
    const { stream } = await endpoint.open({ t: 'open', connection: 'echo' });
    stream.on('error', () => {});
    stream.pause();
    const closed = new Promise<HoopError | undefined>((resolve) => endpoint.once('close', resolve));
    // Bypass the stream's credit accounting and push 2 MiB against a 1 MiB window.
    for (let i = 0; i < 32; i++) endpoint.sendData(stream.id, Buffer.alloc(64 * 1024));
    const error = await closed;
    assert.equal(error?.code, 'WINDOW_EXCEEDED');
    rogue.close();

    const good = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      const { stream: ok } = await good.open({ t: 'open', connection: 'echo' });
      const reading = collect(ok, 5);
      ok.write('hello');
      assert.equal((await reading).toString(), 'hello');
      ok.destroy();
    } finally {
      good.close();
    }
  });

  it('answers an unknown connection with CONNECTION_NOT_FOUND and a bad token with AUTH_INVALID_TOKEN', async () => {
    const client = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      await assert.rejects(
        client.open({ t: 'open', connection: 'nope' }),
        (e) => e instanceof HoopError && e.code === 'CONNECTION_NOT_FOUND',
      );
    } finally {
      client.close();
    }
    const bad = new TunnelClient({
      brokerUrl: broker.url,
      token: 'hoop_pat_wrong',
      logger: silentLogger,
    });
    await assert.rejects(
      bad.ready(),
      (e) => e instanceof HoopError && e.code === 'AUTH_INVALID_TOKEN',
    );
  });

  it('reports AGENT_OFFLINE when the connection’s agent is not connected', async () => {
    await broker.store.createAgent('absent');
    await broker.store.createConnection({
      name: 'offline',
      agent: 'absent',
      type: 'postgres',
      host: '127.0.0.1',
      port: 1,
      user: 'x',
      database: 'x',
    });
    const client = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      await assert.rejects(
        client.open({ t: 'open', connection: 'offline' }),
        (e) => e instanceof HoopError && e.code === 'AGENT_OFFLINE',
      );
    } finally {
      client.close();
    }
  });

  it('validates policies on set, delivers them with each session, and stores audit events', async () => {
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${broker.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const bad = await api('PUT', '/api/v1/connections/echo/policy', {
      guardrails: { deny: [{ statements: ['drop', 'launch'] }] },
    });
    assert.equal(bad.status, 400);
    assert.match(
      String((bad.body['error'] as { message: string }).message),
      /guardrails\.deny\[0\]\.statements\[1\].*launch/,
    );
    const good = await api('PUT', '/api/v1/connections/echo/policy', {
      guardrails: { deny: [{ statements: ['drop'] }, { rule: 'delete-without-where' }] },
      masking: {
        columns: [{ column: 'public.customers.email', strategy: 'redact' }],
        detectors: ['email'],
      },
    });
    assert.equal(good.status, 200);
    assert.deepEqual((await api('GET', '/api/v1/connections/echo/policy')).body, good.body);

    const client = new TunnelClient({
      brokerUrl: broker.url,
      token: adminToken,
      logger: silentLogger,
    });
    try {
      const { stream, session } = await client.open({ t: 'open', connection: 'echo' });
      assert.deepEqual(echo.policies.at(-1), good.body);
      const reading = collect(stream, 'audit:select 1'.length);
      stream.write('audit:select 1');
      await reading;
      let events: { text?: string }[] = [];
      for (let i = 0; i < 50 && events.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        events = ((await api('GET', `/api/v1/sessions/${session}`)).body['events'] ?? []) as {
          text?: string;
        }[];
      }
      assert.equal(events[0]?.text, 'select 1');
      stream.destroy();
    } finally {
      client.close();
    }
  });
});
