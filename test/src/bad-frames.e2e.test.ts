/**
 * Bad input on the broker's tunnel endpoints: raw WebSockets to /v1/agent (with a valid agent
 * token) and /v1/tunnel (with the admin token) send garbage, truncated frames, oversized length
 * fields, unknown kinds, a first frame that is not hello, and a hello for another protocol
 * version. Each must be closed with its named error (WebSocket close code and reason, and the
 * stream-0 error sent just before), and the broker must go on serving real sessions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EARLY_DATA_MAX_BYTES } from '@hoop/shared';
import { Deployment } from './support/deployment.js';
import type { ConnectProcess } from './support/hoop.js';
import { psqlValue } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { frame, helloFrame, Kind, probe, refusedUpgrade } from './support/ws-probe.js';

const MAX_FRAME_BYTES = 256 * 1024;

interface Case {
  readonly name: string;
  readonly send: Buffer[];
  /** Send a valid hello first and wait for the broker's. */
  readonly afterHandshake?: boolean;
  readonly code: number;
  readonly error: string;
}

const cases: Case[] = [
  {
    name: 'garbage text',
    send: [Buffer.from('GET / HTTP/1.1 this is not a tunnel frame at all')],
    code: 4005,
    error: 'FRAME_UNKNOWN_KIND',
  },
  {
    name: 'garbage inside a well-formed header (control body is not msgpack)',
    send: [frame(Kind.control, 0, Buffer.from([0xc1, 0xc1, 0xc1, 0xc1, 0xff, 0x00]))],
    code: 4002,
    error: 'FRAME_MALFORMED',
  },
  {
    name: 'a frame shorter than its length field',
    send: [frame(Kind.control, 0, Buffer.from('0123456789'), 100)],
    code: 4004,
    error: 'FRAME_TRUNCATED',
  },
  {
    name: 'a message shorter than a frame header',
    send: [Buffer.from([Kind.data, 0, 0])],
    code: 4004,
    error: 'FRAME_TRUNCATED',
  },
  {
    name: 'a truncated data frame after the handshake',
    send: [frame(Kind.data, 1, Buffer.alloc(10), 4096)],
    afterHandshake: true,
    code: 4004,
    error: 'FRAME_TRUNCATED',
  },
  {
    name: `a length field over the ${MAX_FRAME_BYTES}-byte maximum`,
    send: [frame(Kind.data, 1, Buffer.alloc(16), MAX_FRAME_BYTES + 1)],
    code: 4003,
    error: 'FRAME_TOO_LARGE',
  },
  {
    name: 'an oversized length field after the handshake',
    send: [frame(Kind.data, 1, Buffer.alloc(0), 0xffff_ffff)],
    afterHandshake: true,
    code: 4003,
    error: 'FRAME_TOO_LARGE',
  },
  {
    name: 'an unknown frame kind',
    send: [frame(0x7f, 0, Buffer.alloc(4))],
    code: 4005,
    error: 'FRAME_UNKNOWN_KIND',
  },
  {
    name: 'an unknown frame kind after the handshake',
    send: [frame(0x09, 1, Buffer.alloc(4))],
    afterHandshake: true,
    code: 4005,
    error: 'FRAME_UNKNOWN_KIND',
  },
  {
    name: 'a data frame before hello',
    send: [frame(Kind.data, 1, Buffer.from('SELECT 1'))],
    code: 4002,
    error: 'FRAME_MALFORMED',
  },
  {
    name: 'a window frame before hello',
    send: [frame(Kind.window, 0, Buffer.from([0, 0, 16, 0]))],
    code: 4002,
    error: 'FRAME_MALFORMED',
  },
];

describe('bad frames on the broker tunnel endpoints', { timeout: 180_000 }, () => {
  let d: Deployment | undefined;
  let conn: ConnectProcess;
  /** A valid token of an agent that only raw sockets use (so no real agent is replaced). */
  let rawAgentToken: string;

  before(
    async () => {
      d = await Deployment.start();
      await d.addAgent('edge');
      rawAgentToken = await d.createAgent('raw');
      await d.addConnection('pg', { agent: 'edge', target: machinePostgres() });
      conn = await d.connect('pg');
      assert.equal(await psqlValue(conn.url, 'select 1'), '1');
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await d?.dispose();
  });

  /** A CLI on /v1/tunnel that opens stream 1 to `pg` and sends `send` (after open-ok, or early). */
  const probeStream = (send: Buffer[], options: { early?: boolean } = {}) =>
    probe({
      brokerUrl: d!.broker.url,
      path: '/v1/tunnel',
      token: d!.broker.adminToken,
      handshake: 'cli',
      open: 'pg',
      ...options,
      send,
    });

  for (const path of ['/v1/agent', '/v1/tunnel'] as const) {
    const role = path === '/v1/agent' ? 'agent' : 'cli';
    const token = () => (path === '/v1/agent' ? rawAgentToken : d!.broker.adminToken);

    for (const c of cases) {
      test(`${path}: ${c.name} → ${c.code} ${c.error}`, async () => {
        const outcome = await probe({
          brokerUrl: d!.broker.url,
          path,
          token: token(),
          send: c.send,
          ...(c.afterHandshake ? { handshake: role } : {}),
        });
        if (c.afterHandshake) {
          assert.ok(
            outcome.received.some((m) => m.t === 'hello'),
            'the broker answered the valid hello',
          );
        }
        assert.equal(outcome.code, c.code, `close code (reason "${outcome.reason}")`);
        assert.equal(outcome.reason, c.error);
        assert.equal(outcome.error?.code, c.error, 'the stream-0 error sent before closing');
      });
    }

    test(`${path}: hello with version 99 → 4001 PROTOCOL_VERSION`, async () => {
      const outcome = await probe({
        brokerUrl: d!.broker.url,
        path,
        token: token(),
        send: [helloFrame(role, 99)],
      });
      assert.equal(outcome.code, 4001);
      assert.equal(outcome.reason, 'PROTOCOL_VERSION');
      assert.equal(outcome.error?.code, 'PROTOCOL_VERSION');
      assert.match(outcome.error?.message ?? '', /v99/);
      assert.ok(!outcome.received.some((m) => m.t === 'hello'), 'no hello for a v99 peer');
    });

    test(`${path}: a second hello after the handshake → 4002 FRAME_MALFORMED`, async () => {
      const outcome = await probe({
        brokerUrl: d!.broker.url,
        path,
        token: token(),
        send: [helloFrame(role)],
        handshake: role,
      });
      assert.equal(outcome.code, 4002);
      assert.equal(outcome.error?.code, 'FRAME_MALFORMED');
    });

    test(`${path}: an upgrade with a bad token gets HTTP 401`, async () => {
      const wrong = await refusedUpgrade({
        brokerUrl: d!.broker.url,
        path,
        token: 'hoop_not_a_token',
      });
      assert.equal(wrong.status, 401);
      assert.equal(JSON.parse(wrong.body).error.code, 'AUTH_INVALID_TOKEN');
      const missing = await refusedUpgrade({ brokerUrl: d!.broker.url, path });
      assert.equal(missing.status, 401);
      assert.equal(JSON.parse(missing.body).error.code, 'AUTH_REQUIRED');
    });
  }

  test('/v1/tunnel: a client that overruns its flow-control window → 4007 WINDOW_EXCEEDED', async () => {
    // Five full frames (1.25 MiB) in one message on an open stream, against a 1 MiB window
    // that nobody has granted back yet.
    const chunk = frame(Kind.data, 1, Buffer.alloc(MAX_FRAME_BYTES));
    const outcome = await probeStream([Buffer.concat([chunk, chunk, chunk, chunk, chunk])]);
    assert.ok(
      outcome.received.some((m) => m.t === 'open-ok'),
      `the stream opened first (${JSON.stringify(outcome.received)})`,
    );
    assert.equal(outcome.code, 4007, `close code (reason "${outcome.reason}")`);
    assert.equal(outcome.reason, 'WINDOW_EXCEEDED');
    assert.equal(outcome.error?.code, 'WINDOW_EXCEEDED');
  });

  test(`/v1/tunnel: more than ${EARLY_DATA_MAX_BYTES} bytes before open-ok → 4002 FRAME_MALFORMED`, async () => {
    const outcome = await probeStream(
      [
        frame(Kind.data, 1, Buffer.alloc(EARLY_DATA_MAX_BYTES)),
        frame(Kind.data, 1, Buffer.alloc(1)),
      ],
      { early: true },
    );
    const hello = outcome.received.find((m) => m.t === 'hello');
    assert.equal(hello?.t === 'hello' && hello.earlyData, true, 'the broker offers early data');
    assert.equal(outcome.code, 4002, `close code (reason "${outcome.reason}")`);
    assert.equal(outcome.error?.code, 'FRAME_MALFORMED');
    assert.match(outcome.error?.message ?? '', /before it opened/);
  });

  test('/v1/tunnel refuses an agent token, /v1/agent refuses a user token (401)', async () => {
    const agentOnTunnel = await refusedUpgrade({
      brokerUrl: d!.broker.url,
      path: '/v1/tunnel',
      token: rawAgentToken,
    });
    assert.equal(agentOnTunnel.status, 401);
    const userOnAgent = await refusedUpgrade({
      brokerUrl: d!.broker.url,
      path: '/v1/agent',
      token: d!.broker.adminToken,
    });
    assert.equal(userOnAgent.status, 401);
  });

  test('after all that, the broker still serves psql sessions', async () => {
    assert.ok(d!.broker.process.running, d!.broker.process.describe());
    assert.equal(await psqlValue(conn.url, "select 'still serving', 40 + 2"), 'still serving|42');
    // A fresh hoop connect (a new CLI tunnel) works too.
    await using fresh = await d!.connect('pg');
    assert.equal(await psqlValue(fresh.url, 'select 7'), '7');
    const health = await d!.api<{ status: string; agents: number }>('/api/v1/health');
    assert.equal(health.status, 'ok');
  });
});
