import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HoopError } from '../errors.js';
import { encodeFrame, encodeWindow, type Frame, FrameKind } from './frame.js';
import { defaultTunnelLimits, resolveLimits } from './limits.js';
import { FrameReader } from './reader.js';
import { FrameSender, MESSAGE_TARGET_BYTES } from './sender.js';
import { type WebSocketLike, WS_OPEN } from './socket.js';

/** A socket that keeps what it is sent (one Buffer per WebSocket message). */
function fakeSocket(): WebSocketLike & { sent: Buffer[] } {
  const sent: Buffer[] = [];
  return {
    sent,
    readyState: WS_OPEN,
    bufferedAmount: 0,
    send(data: Buffer) {
      sent.push(Buffer.from(data));
    },
    ping() {},
    close() {},
    terminate() {},
    on() {
      return undefined;
    },
  };
}

function framesOf(messages: Buffer[]): Frame[] {
  const reader = new FrameReader({ maxFrameBytes: 1 << 20 });
  return messages.flatMap((m) => {
    const frames = reader.push(m);
    reader.assertDrained();
    return frames;
  });
}

describe('FrameSender', () => {
  const limits = resolveLimits({ maxFrameBytes: 1024, maxMessageBytes: 64 * 1024 });
  const noOverflow = (err: HoopError) => assert.fail(err.message);

  it('sends bulk data in messages of about MESSAGE_TARGET_BYTES, not one per turn', () => {
    const ws = fakeSocket();
    const sender = new FrameSender(ws, defaultTunnelLimits, noOverflow);
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 16; i++) sender.pushData(1, chunk);
    sender.flush();
    assert.ok(ws.sent.length >= 4, `${ws.sent.length} messages`);
    for (const m of ws.sent)
      assert.ok(m.length <= MESSAGE_TARGET_BYTES + chunk.length + 64, `${m.length}`);
    const frames = framesOf(ws.sent);
    assert.equal(
      frames.reduce((n, f) => n + f.body.length, 0),
      16 * chunk.length,
    );
  });

  it('sends one message per turn, and extends a DATA frame with more data for its stream', () => {
    const ws = fakeSocket();
    const sender = new FrameSender(ws, limits, noOverflow);
    sender.pushData(1, Buffer.from('ab'));
    sender.pushData(1, Buffer.from('cd'));
    sender.pushData(2, Buffer.from('x'));
    sender.pushData(1, Buffer.from('ef'));
    sender.flush();
    assert.equal(ws.sent.length, 1);
    const frames = framesOf(ws.sent).map((f) => [f.kind, f.stream, f.body.toString()]);
    assert.deepEqual(frames, [
      [FrameKind.data, 1, 'abcd'],
      [FrameKind.data, 2, 'x'],
      [FrameKind.data, 1, 'ef'],
    ]);
  });

  it('keeps order around control and window frames, and starts afresh after a flush', () => {
    const ws = fakeSocket();
    const sender = new FrameSender(ws, limits, noOverflow);
    sender.pushData(1, Buffer.from('a'));
    sender.push(encodeWindow(1, 100));
    sender.pushData(1, Buffer.from('b'));
    sender.push(encodeFrame(FrameKind.control, 1, Buffer.from([0xc0])));
    sender.pushData(1, Buffer.from('c'));
    sender.flush();
    sender.pushData(1, Buffer.from('d'));
    sender.flush();
    const frames = framesOf(ws.sent).map((f) => [f.kind, f.body.length]);
    assert.deepEqual(frames, [
      [FrameKind.data, 1],
      [FrameKind.window, 4],
      [FrameKind.data, 1],
      [FrameKind.control, 1],
      [FrameKind.data, 1],
      [FrameKind.data, 1],
    ]);
    assert.equal(ws.sent.length, 2);
  });

  it('never lets an extended frame pass maxFrameBytes, and splits large bodies', () => {
    const ws = fakeSocket();
    const sender = new FrameSender(ws, limits, noOverflow);
    sender.pushData(3, Buffer.alloc(1000, 1));
    sender.pushData(3, Buffer.alloc(100, 2));
    sender.pushData(3, Buffer.alloc(2500, 3));
    sender.flush();
    const frames = framesOf(ws.sent);
    assert.ok(frames.every((f) => f.body.length <= 1024));
    assert.equal(
      frames.reduce((n, f) => n + f.body.length, 0),
      3600,
    );
    const bytes = Buffer.concat(frames.map((f) => f.body));
    assert.deepEqual(
      bytes,
      Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(100, 2), Buffer.alloc(2500, 3)]),
    );
  });
});
