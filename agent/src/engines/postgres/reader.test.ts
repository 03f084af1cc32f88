import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError } from '@hoop/shared';
import { PgFailure, PostgresEngineError } from './errors.js';
import { BackendCode, ErrorField, FrontendCode } from './messages.js';
import { PacketReader, type PgMessage, parseErrorFields, type StartupPacket } from './reader.js';
import {
  cancelRequest,
  encodeMessage,
  errorResponse,
  sslRequest,
  startupMessage,
} from './writer.js';

const limits = { side: 'client', maxStartupBytes: 10 * 1024, maxMessageBytes: 1024 } as const;

const hex = (text: string): Buffer => Buffer.from(text.replaceAll(/\s+/g, ''), 'hex');

/** StartupMessage 3.0 with user=alice, database=db, written out by hand. */
const STARTUP_FIXTURE = hex(`
  00000020 00030000
  75736572 00 616c696365 00
  64617461 62617365 00 6462 00
  00`);
/** SSLRequest: length 8, code 1234/5679. */
const SSL_FIXTURE = hex('00000008 04d2162f');
/** GSSENCRequest: length 8, code 1234/5680. */
const GSSENC_FIXTURE = hex('00000008 04d21630');
/** CancelRequest: length 16, code 1234/5678, pid 4242, key deadbeef. */
const CANCEL_FIXTURE = hex('00000010 04d2162e 00001092 deadbeef');
/** Query 'select 1'. */
const QUERY_FIXTURE = hex('51 0000000d 73656c6563742031 00');
/** ReadyForQuery idle. */
const READY_FIXTURE = hex('5a 00000005 49');

function readAllStartup(reader: PacketReader): StartupPacket[] {
  const out: StartupPacket[] = [];
  for (let p = reader.nextStartup(); p !== undefined; p = reader.nextStartup()) out.push(p);
  return out;
}

function readAllMessages(reader: PacketReader): PgMessage[] {
  const out: PgMessage[] = [];
  for (let m = reader.nextMessage(); m !== undefined; m = reader.nextMessage()) out.push(m);
  return out;
}

function plain(message: PgMessage): { code: number; body: string } {
  return { code: message.code, body: message.body.toString('hex') };
}

describe('PacketReader byte fixtures', () => {
  it('parses a StartupMessage', () => {
    const reader = new PacketReader(limits);
    reader.push(STARTUP_FIXTURE);
    const packet = reader.nextStartup();
    assert.deepEqual(packet, {
      kind: 'startup',
      majorVersion: 3,
      minorVersion: 0,
      parameters: new Map([
        ['user', 'alice'],
        ['database', 'db'],
      ]),
    });
    assert.equal(reader.bufferedBytes, 0);
  });

  it('agrees with the writer', () => {
    assert.deepEqual(
      startupMessage([
        ['user', 'alice'],
        ['database', 'db'],
      ]),
      STARTUP_FIXTURE,
    );
    assert.deepEqual(sslRequest(), SSL_FIXTURE);
    assert.deepEqual(cancelRequest(4242, hex('deadbeef')), CANCEL_FIXTURE);
    assert.deepEqual(encodeMessage(FrontendCode.query, Buffer.from('select 1\0')), QUERY_FIXTURE);
  });

  it('parses SSLRequest, GSSENCRequest and CancelRequest', () => {
    const reader = new PacketReader(limits);
    reader.push(Buffer.concat([SSL_FIXTURE, GSSENC_FIXTURE, CANCEL_FIXTURE]));
    assert.deepEqual(readAllStartup(reader), [
      { kind: 'ssl-request' },
      { kind: 'gssenc-request' },
      { kind: 'cancel-request', processId: 4242, secretKey: hex('deadbeef') },
    ]);
  });

  it('parses typed messages after startup and keeps the rest', () => {
    const reader = new PacketReader(limits);
    reader.push(Buffer.concat([STARTUP_FIXTURE, QUERY_FIXTURE, READY_FIXTURE, hex('5a00')]));
    assert.equal(reader.nextStartup()?.kind, 'startup');
    assert.deepEqual(readAllMessages(reader).map(plain), [
      { code: FrontendCode.query, body: '73656c656374203100' },
      { code: BackendCode.readyForQuery, body: '49' },
    ]);
    assert.deepEqual(reader.takeRemaining(), hex('5a00'));
    assert.equal(reader.bufferedBytes, 0);
  });

  it('parses an ErrorResponse written by the writer', () => {
    const bytes = errorResponse({
      severity: 'FATAL',
      code: '28P01',
      message: 'nope',
      hint: 'try again',
    });
    const reader = new PacketReader({ ...limits, side: 'target' });
    reader.push(bytes);
    const message = reader.nextMessage();
    assert.equal(message?.code, BackendCode.errorResponse);
    const fields = parseErrorFields(message?.body ?? Buffer.alloc(0));
    assert.equal(fields.get(ErrorField.severity), 'FATAL');
    assert.equal(fields.get(ErrorField.severityNonLocalized), 'FATAL');
    assert.equal(fields.get(ErrorField.code), '28P01');
    assert.equal(fields.get(ErrorField.message), 'nope');
    assert.equal(fields.get(ErrorField.hint), 'try again');
    assert.equal(fields.has(ErrorField.detail), false);
  });

  const rejects: Array<[string, Buffer, PgFailure, string]> = [
    ['an oversized startup packet', hex('00002801 00030000'), PgFailure.startupTooLarge, '08P01'],
    [
      'HTTP instead of postgres',
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      PgFailure.startupTooLarge,
      '08P01',
    ],
    ['a negative length', hex('ffffffff 00030000'), PgFailure.malformed, '08P01'],
    ['a length under 8', hex('00000004 00030000'), PgFailure.malformed, '08P01'],
    ['protocol 2.0', hex('00000009 00020000 00'), PgFailure.unsupportedProtocol, '0A000'],
    [
      'a missing terminator',
      hex('0000000f 00030000 7573657200 6100'),
      PgFailure.malformed,
      '08P01',
    ],
    ['an unterminated name', hex('0000000b 00030000 757365'), PgFailure.malformed, '08P01'],
    ['bytes after the terminator', hex('0000000a 00030000 00 00'), PgFailure.malformed, '08P01'],
    [
      'a duplicate parameter',
      hex('00000011 00030000 6100 6200 6100 6300 00'),
      PgFailure.malformed,
      '08P01',
    ],
    ['an SSLRequest with a body', hex('0000000c 04d2162f 00000000'), PgFailure.malformed, '08P01'],
    ['a short CancelRequest', hex('0000000c 04d2162e 00000001'), PgFailure.malformed, '08P01'],
  ];
  for (const [name, bytes, reason, sqlstate] of rejects) {
    it(`rejects ${name} with a typed error`, () => {
      const reader = new PacketReader(limits);
      reader.push(bytes);
      assert.throws(
        () => reader.nextStartup(),
        (err: unknown) =>
          err instanceof PostgresEngineError &&
          err.reason === reason &&
          err.code === 'INVALID_REQUEST' &&
          err.response?.severity === 'FATAL' &&
          err.response.code === sqlstate,
      );
    });
  }

  it('fails an oversized typed message as soon as its header arrives', () => {
    const reader = new PacketReader({ ...limits, side: 'target' });
    reader.push(hex('44 00100000'));
    assert.throws(
      () => reader.nextMessage(),
      (err: unknown) =>
        err instanceof PostgresEngineError &&
        err.reason === PgFailure.messageTooLarge &&
        err.code === 'TARGET_PROTOCOL_ERROR',
    );
  });

  it('rejects a typed message whose length is under 4', () => {
    const reader = new PacketReader(limits);
    reader.push(hex('51 00000003'));
    assert.throws(() => reader.nextMessage(), PostgresEngineError);
  });
});

describe('PacketReader split at every offset', () => {
  const startupStream = Buffer.concat([SSL_FIXTURE, STARTUP_FIXTURE]);
  const messageStream = Buffer.concat([
    QUERY_FIXTURE,
    READY_FIXTURE,
    errorResponse({ severity: 'ERROR', code: '42P01', message: 'x' }),
  ]);

  const expectedStartup = (() => {
    const reader = new PacketReader(limits);
    reader.push(startupStream);
    return readAllStartup(reader);
  })();
  const expectedMessages = (() => {
    const reader = new PacketReader(limits);
    reader.push(messageStream);
    return readAllMessages(reader).map(plain);
  })();

  it('has the fixtures it expects', () => {
    assert.equal(expectedStartup.length, 2);
    assert.equal(expectedMessages.length, 3);
  });

  for (const [name, stream, read, expected] of [
    ['startup packets', startupStream, readAllStartup, expectedStartup],
    [
      'typed messages',
      messageStream,
      (r: PacketReader) => readAllMessages(r).map(plain),
      expectedMessages,
    ],
  ] as const) {
    it(`yields the same ${name} however the bytes are split in two`, () => {
      for (let at = 0; at <= stream.length; at++) {
        const reader = new PacketReader(limits);
        reader.push(stream.subarray(0, at));
        const first = (read as (r: PacketReader) => unknown[])(reader);
        reader.push(stream.subarray(at));
        const second = (read as (r: PacketReader) => unknown[])(reader);
        assert.deepEqual([...first, ...second], expected, `split at ${at}`);
        assert.equal(reader.bufferedBytes, 0);
      }
    });

    it(`yields the same ${name} fed one byte at a time`, () => {
      const reader = new PacketReader(limits);
      const got: unknown[] = [];
      for (let i = 0; i < stream.length; i++) {
        reader.push(stream.subarray(i, i + 1));
        got.push(...(read as (r: PacketReader) => unknown[])(reader));
      }
      assert.deepEqual(got, expected);
    });
  }
});

describe('PacketReader fuzz', () => {
  /** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Random bytes, sometimes with a plausible header so parsing gets past the length check. */
  function sample(random: () => number): Buffer {
    const bytes = Buffer.alloc(Math.floor(random() * 64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    if (bytes.length >= 8 && random() < 0.5) {
      bytes.writeInt32BE(Math.floor(random() * (bytes.length + 4)), 0);
      if (random() < 0.5)
        bytes.writeInt32BE(
          [196608, 80877102, 80877103, 80877104][Math.floor(random() * 4)] ?? 0,
          4,
        );
    }
    return bytes;
  }

  it('turns any bytes, split anywhere, into packets or a typed error', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const random = prng(seed);
      const input = sample(random);
      const startupFirst = random() < 0.5;
      const reader = new PacketReader({ side: 'client', maxStartupBytes: 48, maxMessageBytes: 48 });
      let consumed = 0;
      try {
        let offset = 0;
        let inStartup = startupFirst;
        while (offset < input.length) {
          const size = 1 + Math.floor(random() * 8);
          reader.push(input.subarray(offset, offset + size));
          offset += size;
          for (let steps = 0; ; steps++) {
            assert.ok(steps <= input.length, `seed ${seed}: reader does not make progress`);
            const before = reader.bufferedBytes;
            const packet = inStartup ? reader.nextStartup() : reader.nextMessage();
            if (packet === undefined) break;
            assert.ok(reader.bufferedBytes < before, `seed ${seed}: a packet consumed no bytes`);
            consumed += before - reader.bufferedBytes;
            inStartup =
              inStartup && packet !== undefined && 'kind' in packet && packet.kind !== 'startup';
          }
        }
        assert.equal(consumed + reader.bufferedBytes, input.length, `seed ${seed}: bytes lost`);
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assert.ok(err instanceof HoopError, `seed ${seed}: threw ${String(err)}`);
      }
    }
  });
});
