/**
 * The proxy's message codec at three levels: byte fixtures, split at every offset (client and
 * server streams), and fuzz (random bytes → messages or a typed PostgresEngineError).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PostgresEngineError } from './errors.js';
import { BackendCode, FrontendCode } from './messages.js';
import {
  decodeClientMessage,
  decodeServerMessage,
  encodeDataRow,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  rowsFromTag,
} from './protocol.js';
import { PacketReader } from './reader.js';
import { encodeMessage } from './writer.js';

function rowDescription(): Buffer {
  // 1 field: "email", table 16384, attnum 3, type 25, size -1, typmod -1, format 0
  const name = Buffer.from('email\0');
  const rest = Buffer.alloc(18);
  rest.writeInt32BE(16384, 0);
  rest.writeInt16BE(3, 4);
  rest.writeInt32BE(25, 6);
  rest.writeInt16BE(-1, 10);
  rest.writeInt32BE(-1, 12);
  rest.writeInt16BE(0, 16);
  return encodeMessage(
    BackendCode.rowDescription,
    Buffer.concat([Buffer.from([0, 1]), name, rest]),
  );
}

function bind(): Buffer {
  // portal "", statement "s1", 1 param format (text), 2 params ('42', NULL), 1 result format (binary)
  const body = Buffer.concat([
    Buffer.from('\0s1\0'),
    Buffer.from([0, 1, 0, 0]),
    Buffer.from([0, 2, 0, 0, 0, 2]),
    Buffer.from('42'),
    Buffer.from([0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0, 1, 0, 1]),
  ]);
  return encodeMessage(FrontendCode.bind, body);
}

const serverStream = Buffer.concat([
  rowDescription(),
  encodeDataRow([Buffer.from('a@b.example'), null]),
  encodeMessage(BackendCode.commandComplete, Buffer.from('SELECT 1\0')),
  encodeMessage(BackendCode.copyOutResponse, Buffer.from([0, 0, 1, 0, 0])),
  encodeMessage(BackendCode.copyData, Buffer.from('x\ty\n')),
  encodeMessage(BackendCode.copyDone),
  encodeMessage(BackendCode.parseComplete),
  encodeMessage(BackendCode.bindComplete),
  encodeMessage(BackendCode.noData),
  encodeMessage(BackendCode.portalSuspended),
  encodeMessage(BackendCode.parameterDescription, Buffer.from([0, 1, 0, 0, 0, 23])),
  encodeMessage(BackendCode.errorResponse, Buffer.from('SERROR\0C42501\0Mno\0\0')),
  encodeMessage(BackendCode.noticeResponse, Buffer.from('SNOTICE\0Mhi\0\0')),
  encodeReadyForQuery('T'),
]);

const clientStream = Buffer.concat([
  encodeQuery('select 1; select 2'),
  encodeParse('s1', 'select $1::int', [23]),
  bind(),
  encodeMessage(FrontendCode.describe, Buffer.from('Ps1\0')),
  encodeMessage(FrontendCode.execute, Buffer.from([0, 0, 0, 0, 0])),
  encodeMessage(FrontendCode.close, Buffer.from('Ss1\0')),
  encodeMessage(FrontendCode.flush),
  encodeMessage(FrontendCode.sync),
  encodeMessage(FrontendCode.copyData, Buffer.from('1\t2\n')),
  encodeMessage(FrontendCode.copyDone),
  encodeMessage(FrontendCode.copyFail, Buffer.from('nope\0')),
  encodeMessage(FrontendCode.terminate),
]);

function decodeAll(stream: Buffer, side: 'client' | 'target', cuts: number[]): unknown[] {
  const reader = new PacketReader({ side, maxStartupBytes: 8, maxMessageBytes: 1 << 20 });
  const out: unknown[] = [];
  let last = 0;
  for (const cut of [...cuts, stream.length]) {
    reader.push(stream.subarray(last, cut));
    last = cut;
    for (let f = reader.nextFrame(); f !== undefined; f = reader.nextFrame()) {
      const m =
        side === 'client'
          ? decodeClientMessage(f.code, f.body)
          : decodeServerMessage(f.code, f.body);
      out.push(JSON.parse(JSON.stringify(m)));
    }
  }
  return out;
}

describe('protocol codec: fixtures', () => {
  it('decodes the server messages the proxy looks inside', () => {
    const messages = decodeAll(serverStream, 'target', []) as Array<Record<string, unknown>>;
    assert.deepEqual(
      messages.map((m) => m['type']),
      [
        'row-description',
        'data-row',
        'command-complete',
        'copy-response',
        'copy-data',
        'copy-done',
        'parse-complete',
        'bind-complete',
        'no-data',
        'portal-suspended',
        'parameter-description',
        'error',
        'notice',
        'ready-for-query',
      ],
    );
    assert.deepEqual(((messages[0]?.['fields'] ?? []) as unknown[])[0], {
      name: 'email',
      tableOid: 16384,
      attnum: 3,
      typeOid: 25,
      typeSize: -1,
      typeModifier: -1,
      format: 0,
    });
    assert.equal(messages[13]?.['status'], 'T');
  });

  it('decodes the client messages', () => {
    const messages = decodeAll(clientStream, 'client', []) as Array<Record<string, unknown>>;
    assert.deepEqual(
      messages.map((m) => m['type']),
      [
        'query',
        'parse',
        'bind',
        'describe',
        'execute',
        'close',
        'flush',
        'sync',
        'copy-data',
        'copy-done',
        'copy-fail',
        'terminate',
      ],
    );
    assert.equal(messages[1]?.['sql'], 'select $1::int');
    const b = messages[2] as { statement: string; params: unknown[]; resultFormats: number[] };
    assert.equal(b.statement, 's1');
    assert.equal(b.params.length, 2);
    assert.equal(b.params[1], null);
    assert.deepEqual(b.resultFormats, [1]);
  });

  it('re-encodes DataRow with correct lengths, and reads row counts from tags', () => {
    const row = encodeDataRow([Buffer.from('xy'), null, Buffer.alloc(0)]);
    const m = decodeServerMessage(row[0] as number, row.subarray(5));
    assert.equal(row.readInt32BE(1), row.length - 1);
    assert.deepEqual(m, { type: 'data-row', values: [Buffer.from('xy'), null, Buffer.alloc(0)] });
    assert.equal(rowsFromTag('INSERT 0 5'), 5);
    assert.equal(rowsFromTag('SELECT 3'), 3);
    assert.equal(rowsFromTag('BEGIN'), undefined);
  });
});

describe('protocol codec: split at every offset', () => {
  for (const [name, stream, side] of [
    ['server', serverStream, 'target'],
    ['client', clientStream, 'client'],
  ] as const) {
    it(`${name} stream: same messages whatever the split`, () => {
      const whole = decodeAll(stream, side, []);
      for (let i = 1; i < stream.length; i++) {
        assert.deepEqual(decodeAll(stream, side, [i]), whole, `split at ${i}`);
      }
      for (let i = 1; i < stream.length; i += 3) {
        assert.deepEqual(decodeAll(stream, side, [i, Math.min(stream.length, i + 7)]), whole);
      }
    });
  }

  it('a message over the limit fails as soon as its header arrives', () => {
    const reader = new PacketReader({ side: 'target', maxStartupBytes: 8, maxMessageBytes: 100 });
    const header = Buffer.from([BackendCode.dataRow, 0, 0, 1, 0]);
    reader.push(header);
    assert.throws(
      () => reader.nextFrame(),
      (err: unknown) => {
        assert.ok(err instanceof PostgresEngineError);
        assert.equal(err.reason, 'MESSAGE_TOO_LARGE');
        return true;
      },
    );
  });
});

describe('protocol codec: fuzz', () => {
  it('random bytes become messages or a typed error, never anything else', () => {
    for (let round = 0; round < 3000; round++) {
      const side = round % 2 === 0 ? 'client' : 'target';
      const bytes =
        round % 3 === 0
          ? randomBytes(1 + (round % 200))
          : Buffer.concat([
              Buffer.from([
                side === 'client'
                  ? ([0x51, 0x50, 0x42, 0x44, 0x45, 0x43, 0x53][round % 7] as number)
                  : ([0x54, 0x44, 0x43, 0x5a, 0x45, 0x47, 0x48, 0x74][round % 8] as number),
              ]),
              (() => {
                const len = Buffer.alloc(4);
                len.writeInt32BE(4 + (round % 40), 0);
                return len;
              })(),
              randomBytes(round % 40),
            ]);
      try {
        decodeAll(bytes, side, [Math.floor(bytes.length / 2)]);
      } catch (err) {
        assert.ok(err instanceof PostgresEngineError, `round ${round}: ${String(err)}`);
      }
    }
  });
});
