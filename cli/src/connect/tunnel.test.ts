/**
 * The tunnel path in one process: a real broker (PGlite store, real HTTP/WebSocket server), a
 * real agent and the CLI's tunnel client, with an echo engine standing in for the target so the
 * relay itself is what's measured: integrity, flow control, fairness, and limits.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { EngineSession } from '@hoop/agent';
import type { Broker } from '@hoop/broker';
import {
  addEchoConnection,
  EchoEngine,
  echoEngines,
  startTestBroker,
  type TestBroker,
} from '@hoop/broker/testing';
import { EARLY_DATA_MAX_BYTES, HoopError, type TunnelStream } from '@hoop/shared';

/** The echo engine that also records an audit statement for data starting `audit:`. */
class AuditingEchoEngine extends EchoEngine {
  override serve(session: EngineSession): Promise<void> {
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
    return super.serve(session);
  }
}

/** Speaks first, as an SSH server does: a banner as soon as the session opens, then echo. */
class BannerEngine extends EchoEngine {
  override serve(session: EngineSession): Promise<void> {
    session.client.write('banner\n');
    return super.serve(session);
  }
}

/**
 * Echo that notes when the first byte of a session reached the engine, and when (or with what
 * error) the broker admitted the session.
 */
class FirstByteEngine extends EchoEngine {
  firstByteAt: number | undefined;
  admittedAt: number | undefined;
  refused: unknown;
  override serve(session: EngineSession): Promise<void> {
    // Noted where the tunnel hands the bytes to the stream, without reading them (or now, if
    // they came while the agent verified the grant: no earlier than they did).
    const { client } = session;
    if (client.readableLength > 0) this.firstByteAt ??= Date.now();
    const push = client.push.bind(client);
    client.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk !== null) this.firstByteAt ??= Date.now();
      return push(chunk, encoding);
    };
    session.admitted.then(
      () => {
        this.admittedAt ??= Date.now();
      },
      (err: unknown) => {
        this.refused = err;
      },
    );
    return super.serve(session);
  }

  reset(): void {
    this.firstByteAt = undefined;
    this.admittedAt = undefined;
    this.refused = undefined;
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

/** Opens `connection` with `hello-` sent as early data (before open-ok, as hoop connect does). */
async function openWithHello(
  client: ReturnType<TestBroker['tunnel']>,
  connection: string,
): Promise<{ stream: TunnelStream; session: string }> {
  const opened = await client.open(
    { t: 'open', connection },
    Promise.resolve(Buffer.from('hello-')),
  );
  assert.equal(opened.earlySent, true, 'the bytes went before open-ok');
  return opened;
}

/** Sends `world` after the early `hello-` and checks the echo: both, once, in order. */
async function assertHelloWorld(stream: TunnelStream): Promise<void> {
  const reading = collect(stream, 'hello-world'.length);
  stream.write('world');
  assert.equal((await reading).toString(), 'hello-world');
}

/** The tunnel goes on: a new stream to `connection` opens and echoes. */
async function assertStillServes(
  client: ReturnType<TestBroker['tunnel']>,
  connection: string,
): Promise<void> {
  const opened = await client.open({ t: 'open', connection });
  const reading = collect(opened.stream, 2);
  opened.stream.write('ok');
  assert.equal((await reading).toString(), 'ok');
  opened.stream.destroy();
}

/** Waits until `done()` holds, at most 2 s (the caller asserts what it waited for). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('tunnel relay (broker + agent + CLI client, in process)', () => {
  let t: TestBroker;
  let broker: Broker;
  const echo = new AuditingEchoEngine();

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-tunnel-' });
    broker = t.broker;
    await t.startAgent('echo-agent', { engines: echoEngines(echo) });
    await addEchoConnection(broker, 'echo', 'echo-agent');
  });

  after(() => t.close());

  it('carries 16 MiB both ways intact through a slow reader', async () => {
    const client = t.tunnel();
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
    const client = t.tunnel();
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
    const rogue = t.tunnel();
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

    const good = t.tunnel();
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
    const client = t.tunnel();
    try {
      await assert.rejects(
        client.open({ t: 'open', connection: 'nope' }),
        (e) => e instanceof HoopError && e.code === 'CONNECTION_NOT_FOUND',
      );
    } finally {
      client.close();
    }
    const bad = t.tunnel('hoop_pat_wrong');
    await assert.rejects(
      bad.ready(),
      (e) => e instanceof HoopError && e.code === 'AUTH_INVALID_TOKEN',
    );
  });

  it('reports AGENT_OFFLINE when the connection’s agent is not connected', async () => {
    await broker.store.createAgent('absent');
    await addEchoConnection(broker, 'offline', 'absent');
    const client = t.tunnel();
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
    const api = t.api;
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

    const client = t.tunnel();
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
  it('holds what the agent sends first until the session row is stored, then delivers it in order', async () => {
    await t.startAgent('banner-agent', { engines: echoEngines(new BannerEngine()) });
    await addEchoConnection(broker, 'banner', 'banner-agent');
    const store = broker.store;
    const createSession = store.createSession.bind(store);
    // A slow store: the agent opens the session (and speaks) long before the row is stored.
    store.createSession = async (input) => {
      await new Promise((r) => setTimeout(r, 300));
      return createSession(input);
    };
    const client = t.tunnel();
    try {
      const started = Date.now();
      const { stream, session } = await client.open({ t: 'open', connection: 'banner' });
      assert.ok(Date.now() - started >= 290, 'open-ok waits for the session row');
      assert.equal((await store.getSession(session)).status, 'open');
      const reading = collect(stream, 'banner\nping'.length);
      stream.write('ping');
      assert.equal((await reading).toString(), 'banner\nping');
      stream.destroy();
    } finally {
      store.createSession = createSession;
      client.close();
    }
  });

  describe('early data (the client speaks before open-ok)', () => {
    const first = new FirstByteEngine();
    const legacy = new FirstByteEngine();

    before(async () => {
      await t.startAgent('early-agent', { engines: echoEngines(first) });
      await addEchoConnection(broker, 'early', 'early-agent');
      await t.startAgent('legacy-agent', { engines: echoEngines(legacy), waitForAdmit: false });
      await addEchoConnection(broker, 'early-legacy', 'legacy-agent');
    });

    /** Makes storing a session row take 300 ms; returns when the last row was stored. */
    const slowRows = () => {
      const store = broker.store;
      const createSession = store.createSession.bind(store);
      const state: { storedAt?: number; restore: () => void } = {
        restore: () => {
          store.createSession = createSession;
        },
      };
      store.createSession = async (input) => {
        await new Promise((r) => setTimeout(r, 300));
        const row = await createSession(input);
        state.storedAt = Date.now();
        return row;
      };
      return state;
    };

    it('passes bytes sent with the open to the agent at once, and admits the session once its row is stored', async () => {
      const rows = slowRows();
      first.reset();
      const client = t.tunnel();
      try {
        const endpoint = await client.ready();
        assert.equal((await endpoint.ready()).earlyData, true, 'the broker offers early data');
        const opened = await openWithHello(client, 'early');
        const { storedAt } = rows;
        assert.ok(storedAt !== undefined && first.firstByteAt !== undefined);
        assert.ok(
          first.firstByteAt < storedAt,
          'the agent had the first bytes while the row was being stored (to log in meanwhile)',
        );
        // The admit and the client's open-ok leave the broker together, on different sockets.
        await until(() => first.admittedAt !== undefined);
        assert.ok(first.admittedAt !== undefined, 'the session was never admitted');
        assert.ok(
          first.admittedAt >= storedAt,
          `admitted ${storedAt - first.admittedAt} ms before the row was stored`,
        );
        await assertHelloWorld(opened.stream);
        assert.equal((await broker.store.getSession(opened.session)).status, 'open');
        opened.stream.destroy();
      } finally {
        rows.restore();
        client.close();
      }
    });

    it('holds them until the row is stored for an agent that does not wait for admission', async () => {
      const rows = slowRows();
      legacy.reset();
      const client = t.tunnel();
      try {
        const opened = await openWithHello(client, 'early-legacy');
        const { storedAt } = rows;
        assert.ok(storedAt !== undefined && legacy.firstByteAt !== undefined);
        assert.ok(
          legacy.firstByteAt >= storedAt,
          `the agent got the first byte ${storedAt - legacy.firstByteAt} ms before the row was stored`,
        );
        await assertHelloWorld(opened.stream);
        opened.stream.destroy();
      } finally {
        rows.restore();
        client.close();
      }
    });

    it('never admits a session whose row cannot be stored: the agent hears why', async () => {
      const store = broker.store;
      const createSession = store.createSession.bind(store);
      store.createSession = async () => {
        await new Promise((r) => setTimeout(r, 100));
        throw new HoopError('INTERNAL', 'the store is full');
      };
      first.reset();
      const client = t.tunnel();
      try {
        await assert.rejects(
          client.open({ t: 'open', connection: 'early' }, Promise.resolve(Buffer.from('x'))),
          (e) => e instanceof HoopError && e.code === 'INTERNAL',
        );
        await until(() => first.refused !== undefined);
        assert.equal(first.admittedAt, undefined, 'the session was admitted');
        assert.ok(
          first.refused instanceof HoopError && first.refused.code === 'INTERNAL',
          `the agent's admission failed with ${String(first.refused)}`,
        );
        // The tunnel goes on.
        store.createSession = createSession;
        await assertStillServes(client, 'early');
      } finally {
        store.createSession = createSession;
        client.close();
      }
    });

    it('survives a session closed with an error before the agent has verified its grant', async () => {
      const store = broker.store;
      const createSession = store.createSession.bind(store);
      store.createSession = () => Promise.reject(new HoopError('INTERNAL', 'the store is full'));
      // The agent runs in this process: an error nobody listens for would end up here.
      const uncaught: unknown[] = [];
      const onUncaught = (err: unknown): void => {
        uncaught.push(err);
      };
      process.on('uncaughtException', onUncaught);
      const client = t.tunnel();
      try {
        for (let i = 0; i < 5; i++) {
          await assert.rejects(
            client.open({ t: 'open', connection: 'early' }, Promise.resolve(Buffer.from('x'))),
            (e) => e instanceof HoopError && e.code === 'INTERNAL',
          );
        }
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(uncaught, [], 'the agent let a stream error through');
        store.createSession = createSession;
        await assertStillServes(client, 'early');
      } finally {
        process.off('uncaughtException', onUncaught);
        store.createSession = createSession;
        client.close();
      }
    });

    it('leaves bytes that come after open-ok, or that are too many, to the caller', async () => {
      const client = t.tunnel();
      try {
        const late = await client.open(
          { t: 'open', connection: 'early' },
          new Promise<Buffer>((resolve) => setTimeout(() => resolve(Buffer.from('late')), 500)),
        );
        assert.equal(late.earlySent, false);
        late.stream.destroy();

        const big = randomBytes(EARLY_DATA_MAX_BYTES + 1);
        const opened = await client.open({ t: 'open', connection: 'early' }, Promise.resolve(big));
        assert.equal(opened.earlySent, false, 'more than EARLY_DATA_MAX_BYTES waits for open-ok');
        const reading = collect(opened.stream, big.length);
        opened.stream.write(big);
        assert.equal(digest(await reading), digest(big));
        opened.stream.destroy();
      } finally {
        client.close();
      }
    });

    it('drops early bytes of an open that fails, and the tunnel goes on', async () => {
      const client = t.tunnel();
      try {
        await assert.rejects(
          client.open({ t: 'open', connection: 'nope' }, Promise.resolve(Buffer.from('secret'))),
          (e) => e instanceof HoopError && e.code === 'CONNECTION_NOT_FOUND',
        );
        const { stream } = await client.open(
          { t: 'open', connection: 'early' },
          Promise.resolve(Buffer.from('next')),
        );
        const reading = collect(stream, 4);
        assert.equal((await reading).toString(), 'next');
        stream.destroy();
      } finally {
        client.close();
      }
    });
  });
});
