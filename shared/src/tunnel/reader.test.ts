import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { HoopError } from '../errors.js';
import { encodeFrame, encodeWindow, FRAME_HEADER_BYTES, FrameKind } from './frame.js';
import { FrameReader } from './reader.js';

const fixture = Buffer.concat([
  encodeFrame(FrameKind.data, 7, Buffer.from('select 1;')),
  encodeWindow(7, 65536),
  encodeFrame(FrameKind.control, 0, Buffer.from([0x80])),
  encodeFrame(FrameKind.data, 0xffffffff, Buffer.alloc(0)),
]);

describe('FrameReader', () => {
  it('parses a byte fixture', () => {
    // kind 0x01, stream 7, length 9, then the body
    assert.deepEqual([...fixture.subarray(0, FRAME_HEADER_BYTES)], [0x01, 0, 0, 0, 7, 0, 0, 0, 9]);
    const frames = new FrameReader({ maxFrameBytes: 1024 }).push(fixture);
    assert.equal(frames.length, 4);
    assert.equal(frames[0]?.kind, FrameKind.data);
    assert.equal(frames[0]?.stream, 7);
    assert.equal(frames[0]?.body.toString(), 'select 1;');
    assert.equal(frames[1]?.kind, FrameKind.window);
    assert.equal(frames[1]?.body.readUInt32BE(0), 65536);
    assert.equal(frames[3]?.stream, 0xffffffff);
    assert.equal(frames[3]?.body.length, 0);
  });

  it('yields the same frames when the input is split at every offset', () => {
    const whole = new FrameReader({ maxFrameBytes: 1024 }).push(fixture);
    for (let at = 0; at <= fixture.length; at++) {
      const reader = new FrameReader({ maxFrameBytes: 1024 });
      const frames = [
        ...reader.push(fixture.subarray(0, at)),
        ...reader.push(fixture.subarray(at)),
      ];
      assert.equal(reader.bufferedBytes, 0, `split at ${at}`);
      assert.deepEqual(
        frames.map((f) => [f.kind, f.stream, f.body.toString('hex')]),
        whole.map((f) => [f.kind, f.stream, f.body.toString('hex')]),
        `split at ${at}`,
      );
    }
  });

  it('rejects an oversized frame from its header alone', () => {
    const reader = new FrameReader({ maxFrameBytes: 16 });
    const header = Buffer.from([0x01, 0, 0, 0, 1, 0, 0, 0, 17]);
    assert.throws(
      () => reader.push(header),
      (e) => e instanceof HoopError && e.code === 'FRAME_TOO_LARGE',
    );
  });

  it('rejects an unknown kind', () => {
    const reader = new FrameReader({ maxFrameBytes: 16 });
    assert.throws(
      () => reader.push(Buffer.from([0x7f, 0, 0, 0, 1, 0, 0, 0, 0])),
      (e) => e instanceof HoopError && e.code === 'FRAME_UNKNOWN_KIND',
    );
  });

  it('reports a message that ends inside a frame', () => {
    const reader = new FrameReader({ maxFrameBytes: 1024 });
    assert.deepEqual(reader.push(fixture.subarray(0, 12)), []);
    assert.throws(
      () => reader.assertDrained(),
      (e) => e instanceof HoopError && e.code === 'FRAME_TRUNCATED',
    );
    assert.equal(reader.bufferedBytes, 0);
  });

  it('turns any byte input into frames or a typed error (fuzz)', () => {
    for (let i = 0; i < 2000; i++) {
      const reader = new FrameReader({ maxFrameBytes: 64 });
      const input = randomBytes(1 + (i % 97));
      if (i % 3 === 0) input[0] = 1 + (i % 3);
      try {
        let taken = 0;
        while (taken < input.length) {
          const n = 1 + (i % 7);
          reader.push(input.subarray(taken, taken + n));
          taken += n;
        }
        assert.ok(reader.bufferedBytes <= 64 + FRAME_HEADER_BYTES);
      } catch (err) {
        assert.ok(err instanceof HoopError, `non-typed error: ${String(err)}`);
      }
    }
  });
});
