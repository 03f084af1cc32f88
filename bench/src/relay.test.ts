import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { echoServer } from './echo-server.js';
import { Services } from './processes.js';
import { startRelayChain } from './relay.js';

/**
 * Sends `payload` and resolves with the bytes that came back once the far side closed the
 * connection. With `end`, our side is ended after the payload (a round trip through an echo).
 * With `resetIsClose`, a reset counts as that close too: a relay that drops its client when the
 * target refuses sends a FIN when it has read what the client sent and a reset (ECONNRESET) when
 * that was still unread. A connection still open after 10 s fails.
 */
function exchange(
  port: number,
  payload: Buffer,
  options: { end: boolean; resetIsClose: boolean },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      options.resetIsClose && err.code === 'ECONNRESET'
        ? resolve(Buffer.concat(chunks))
        : reject(err),
    );
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('the connection was not closed within 10 s'));
    });
    for (let i = 0; i < payload.length; i += 4096) socket.write(payload.subarray(i, i + 4096));
    if (options.end) socket.end();
  });
}

describe('startRelayChain', () => {
  it('carries bytes through three relay processes intact and in order, and passes the end on', async () => {
    const echo = await echoServer();
    const services = new Services({ forwardStderr: false });
    try {
      const port = await startRelayChain(services, {
        target: { host: '127.0.0.1', port: echo.port },
        hops: 3,
        env: process.env,
        signal: AbortSignal.timeout(20_000),
      });
      assert.notEqual(port, echo.port);
      const payload = randomBytes(512 * 1024);
      const back = await exchange(port, payload, { end: true, resetIsClose: false });
      assert.equal(back.length, payload.length);
      assert.ok(back.equals(payload));
    } finally {
      await services.stopAll();
      await echo.close();
    }
  });

  it('closes the client when the target refuses, and keeps serving', async () => {
    const echo = await echoServer();
    const refusing = echo.port;
    await echo.close();
    const services = new Services({ forwardStderr: false });
    try {
      const port = await startRelayChain(services, {
        target: { host: '127.0.0.1', port: refusing },
        hops: 1,
        env: process.env,
        signal: AbortSignal.timeout(20_000),
      });
      for (let i = 0; i < 2; i++) {
        const back = await exchange(port, Buffer.from('hello'), { end: false, resetIsClose: true });
        assert.equal(back.length, 0);
      }
    } finally {
      await services.stopAll();
    }
  });

  it('a relay process given no HOST:PORT says how to call it and exits with 2', async () => {
    const script = fileURLToPath(new URL('./relay-process.js', import.meta.url));
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [script, 'no-port'], { timeout: 10_000 }, (err, _out, stderr) =>
        resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stderr }),
      );
    });
    assert.equal(outcome.code, 2);
    assert.match(outcome.stderr, /usage: relay-process\.js HOST:PORT/);
  });

  it('refuses a chain of no relays', async () => {
    const services = new Services({ forwardStderr: false });
    await assert.rejects(
      startRelayChain(services, {
        target: { host: '127.0.0.1', port: 1 },
        hops: 0,
        env: process.env,
        signal: AbortSignal.timeout(1000),
      }),
      RangeError,
    );
  });
});
