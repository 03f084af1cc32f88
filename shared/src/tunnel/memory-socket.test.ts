import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { MemorySocket } from './memory-socket.js';
import { WS_OPEN } from './socket.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('MemorySocket', () => {
  it('delivers messages whole, in order, after send returns, counting them until then', async () => {
    const [a, b] = MemorySocket.pair();
    const got: string[] = [];
    b.on('message', (data: Buffer, binary: boolean) => {
      assert.equal(binary, true);
      got.push(data.toString());
    });
    a.send(Buffer.from('one'), { binary: true });
    a.send(Buffer.from('two!'), { binary: true });
    assert.deepEqual(got, [], 'nothing arrives inside send()');
    assert.equal(a.bufferedAmount, 7);
    await tick();
    assert.deepEqual(got, ['one', 'two!']);
    assert.equal(a.bufferedAmount, 0);
  });

  it('closes after what was sent before the close, once on each end', async () => {
    const [a, b] = MemorySocket.pair();
    const events: string[] = [];
    b.on('message', (data: Buffer) => events.push(`b got ${data}`));
    a.on('close', (code: number, reason: Buffer) => events.push(`a close ${code} ${reason}`));
    b.on('close', (code: number, reason: Buffer) => events.push(`b close ${code} ${reason}`));
    a.send(Buffer.from('last words'), { binary: true });
    a.close(4001, 'GONE');
    b.close();
    await tick();
    assert.deepEqual(events, ['b got last words', 'b close 4001 GONE', 'a close 4001 GONE']);
    assert.notEqual(a.readyState, WS_OPEN);
    const err = await new Promise<Error | undefined>((resolve) =>
      a.send(Buffer.from('late'), { binary: true }, resolve),
    );
    assert.match(String(err?.message), /closed/);
  });

  it('answers a ping with a pong', async () => {
    const [a, b] = MemorySocket.pair();
    const pinged = once(b, 'ping');
    const ponged = once(a, 'pong');
    a.ping();
    await Promise.all([pinged, ponged]);
  });
});
