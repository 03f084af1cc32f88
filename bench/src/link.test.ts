import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { describe, it } from 'node:test';
import { echoServer } from './echo-server.js';
import { startSlowLink } from './link.js';

describe('startSlowLink', () => {
  it('carries bytes intact and in order, after a handshake round trip and one delay each way', async () => {
    const echo = await echoServer();
    const link = await startSlowLink({ host: '127.0.0.1', port: echo.port }, 20);
    try {
      const started = performance.now();
      const socket = tcpConnect(link.port, '127.0.0.1');
      const payload = randomBytes(256 * 1024);
      const received: Buffer[] = [];
      let got = 0;
      let firstAt = 0;
      const done = new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          if (got === 0) firstAt = performance.now() - started;
          received.push(chunk);
          got += chunk.length;
          if (got >= payload.length) resolve();
        });
      });
      // Many small writes at once: order must survive the per-chunk timers.
      for (let i = 0; i < payload.length; i += 1000) socket.write(payload.subarray(i, i + 1000));
      await done;
      assert.ok(Buffer.concat(received).equals(payload), 'the echo came back intact and in order');
      // SYN and SYN-ACK (20 + 20), then the data there and back (20 + 20); timers round to 1 ms.
      assert.ok(firstAt >= 4 * 20 - 2, `the first byte came back after ${firstAt.toFixed(1)} ms`);
      socket.destroy();
    } finally {
      await link.close();
      await echo.close();
    }
  });

  it('passes the end of a stream on, and refuses a negative delay', async () => {
    const echo = await echoServer();
    const link = await startSlowLink({ host: '127.0.0.1', port: echo.port }, 1);
    try {
      const socket = tcpConnect(link.port, '127.0.0.1');
      const ended = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        socket.once('end', () => resolve(text));
      });
      socket.end('bye');
      assert.equal(await ended, 'bye');
    } finally {
      await link.close();
      await echo.close();
    }
    await assert.rejects(startSlowLink({ host: '127.0.0.1', port: 1 }, -1), RangeError);
  });
});
