import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { ControlMessage } from './messages.js';
import { type StreamLink, TunnelStream } from './stream.js';

/** Two streams joined by an in-memory link that delivers on the next turn, like a socket. */
function pair(window: number): { a: TunnelStream; b: TunnelStream; inFlight: () => number } {
  let inFlight = 0;
  const peers: { a?: TunnelStream; b?: TunnelStream } = {};
  const link = (other: () => TunnelStream | undefined): StreamLink => ({
    sendData: (_id, body) => {
      inFlight += body.length;
      const copy = Buffer.from(body);
      setImmediate(() => {
        inFlight -= copy.length;
        other()?.receiveData(copy);
      });
    },
    sendWindow: (_id, credit) => setImmediate(() => other()?.receiveWindowCredit(credit)),
    sendControl: (_id, message: ControlMessage) =>
      setImmediate(() => {
        if (message.t === 'close') other()?.receiveClose(message);
      }),
    release: () => {},
  });
  peers.a = new TunnelStream(
    link(() => peers.b),
    1,
    { sendWindow: window, receiveWindow: window },
  );
  peers.b = new TunnelStream(
    link(() => peers.a),
    1,
    { sendWindow: window, receiveWindow: window },
  );
  return { a: peers.a, b: peers.b, inFlight: () => inFlight };
}

describe('TunnelStream flow control', () => {
  it('carries bytes in order and ends cleanly', async () => {
    const { a, b } = pair(1024);
    const chunks: Buffer[] = [];
    b.on('data', (c: Buffer) => chunks.push(c));
    const payload = Buffer.alloc(50_000, 7);
    payload.write('start');
    a.end(payload);
    await once(b, 'end');
    assert.deepEqual(Buffer.concat(chunks), payload);
  });

  it('holds a fast writer when the reader does not read (bounded buffering)', async () => {
    const window = 16 * 1024;
    const { a, b } = pair(window);
    let written = 0;
    let signalled = false;
    for (let i = 0; i < 100; i++) {
      if (!a.write(Buffer.alloc(4096))) signalled = true;
      written += 4096;
    }
    await new Promise((r) => setTimeout(r, 50));
    // b never read: b holds at most its read buffer plus one window; the rest waits at a
    assert.ok(
      b.readableLength <= window + b.readableHighWaterMark,
      `reader buffered ${b.readableLength}`,
    );
    assert.ok(a.writableLength > 0, 'writer must be holding data');
    assert.ok(signalled, 'write() must have signalled backpressure');
    // now drain and everything arrives
    let received = 0;
    b.on('data', (c: Buffer) => {
      received += c.length;
    });
    a.end();
    await once(b, 'end');
    assert.equal(received, written);
  });

  it('fails a peer that ignores its window', async () => {
    const { a, b } = pair(1024);
    a.on('error', () => {});
    const errors: unknown[] = [];
    b.on('error', (e) => errors.push(e));
    b.pause();
    b.receiveData(Buffer.alloc(1000));
    b.receiveData(Buffer.alloc(2000));
    await new Promise((r) => setImmediate(r));
    assert.equal((errors[0] as { code?: string } | undefined)?.code, 'WINDOW_EXCEEDED');
  });

  it('holds a close error that arrives with open-ok until the opener can listen for it', async () => {
    const link: StreamLink = {
      sendData: () => {},
      sendWindow: () => {},
      sendControl: () => {},
      release: () => {},
    };
    const stream = new TunnelStream(link, 3, { sendWindow: 1024, receiveWindow: 1024 }, 'opening');
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.prependListener('uncaughtException', onUncaught);
    try {
      // What the endpoint does when open-ok and a close with an error come in one read.
      const handedOver = (async () => {
        // Both come from one socket read: a macrotask, after which Node runs the tick queue
        // (where a destroyed stream emits 'error') before the promise continuations.
        await new Promise<void>((resolve) =>
          setImmediate(() => {
            stream.accepted();
            resolve();
            stream.receiveClose({
              t: 'close',
              error: { code: 'INTERNAL', message: 'the broker could not record the grant' },
            });
          }),
        );
        // An opener a few promise hops away, as behind TunnelClient.open().
        await Promise.resolve();
        await Promise.resolve();
        return stream;
      })();
      const opened = await handedOver;
      const [err] = (await once(opened, 'error')) as [{ code?: string }];
      assert.equal(err.code, 'INTERNAL');
      assert.deepEqual(uncaught, []);
      assert.equal(opened.state, 'closed');
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
  });
});
