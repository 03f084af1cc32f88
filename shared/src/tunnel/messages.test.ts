import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { HoopError } from '../errors.js';
import { type ControlMessage, decodeControl, encodeControl, PROTOCOL_VERSION } from './messages.js';

const samples: ControlMessage[] = [
  { t: 'hello', version: PROTOCOL_VERSION, role: 'cli', window: 1024, maxFrameBytes: 4096 },
  {
    t: 'hello',
    version: PROTOCOL_VERSION,
    role: 'broker',
    window: 1024,
    maxFrameBytes: 4096,
    earlyData: true,
  },
  {
    t: 'hello',
    version: PROTOCOL_VERSION,
    role: 'agent',
    window: 1,
    maxFrameBytes: 1,
    admit: true,
  },
  { t: 'open', connection: 'demo', client: '127.0.0.1:5555' },
  {
    t: 'open-session',
    session: 's1',
    user: 'admin',
    target: {
      name: 'demo',
      type: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      user: 'app',
      database: 'app',
      tls: 'prefer',
      credential: { kind: 'env', name: 'PGPASS' },
    },
    admit: true,
  },
  { t: 'admit' },
  { t: 'open-ok', session: 's1' },
  {
    t: 'open-error',
    error: { code: 'AGENT_OFFLINE', message: 'agent a is offline', hint: 'start it' },
  },
  { t: 'close' },
  { t: 'close', error: { code: 'TARGET_UNREACHABLE', message: 'no route' } },
  { t: 'error', error: { code: 'FRAME_MALFORMED', message: 'bad' } },
];

const isMalformed = (e: unknown) => e instanceof HoopError && e.code === 'FRAME_MALFORMED';

describe('control messages', () => {
  it('round-trip through msgpack', () => {
    for (const message of samples) assert.deepEqual(decodeControl(encodeControl(message)), message);
  });

  it('reject unknown types, missing fields and unknown error codes', () => {
    assert.throws(() => decodeControl(pack({ t: 'launch-missiles' })), isMalformed);
    assert.throws(() => decodeControl(pack({ t: 'open' })), isMalformed);
    assert.throws(
      () =>
        decodeControl(pack({ t: 'hello', version: '1', role: 'cli', window: 1, maxFrameBytes: 1 })),
      isMalformed,
    );
    assert.throws(
      () =>
        decodeControl(
          pack({
            t: 'hello',
            version: PROTOCOL_VERSION,
            role: 'broker',
            window: 1,
            maxFrameBytes: 1,
            earlyData: 'yes',
          }),
        ),
      isMalformed,
    );
    assert.throws(
      () =>
        decodeControl(
          pack({ t: 'hello', version: 1, role: 'agent', window: 1, maxFrameBytes: 1, admit: 1 }),
        ),
      isMalformed,
    );
    assert.throws(
      () =>
        decodeControl(
          pack({
            ...samples.find((m) => m.t === 'open-session'),
            admit: 'later',
          }),
        ),
      isMalformed,
    );
    assert.throws(
      () => decodeControl(pack({ t: 'close', error: { code: 'NOPE', message: 'x' } })),
      isMalformed,
    );
    // A direct ticket is 32 random bytes in base64url, nothing else.
    const ticket = randomBytes(32).toString('base64url');
    assert.equal(
      (decodeControl(pack({ t: 'open', connection: 'db', direct: ticket })) as { direct?: string })
        .direct,
      ticket,
    );
    for (const direct of ['short', `${ticket}=`, `${ticket.slice(1)}/`, 42]) {
      assert.throws(
        () => decodeControl(pack({ t: 'open', connection: 'db', direct })),
        isMalformed,
      );
      assert.throws(
        () => decodeControl(pack({ ...samples.find((m) => m.t === 'open-session'), direct })),
        isMalformed,
      );
    }
    assert.throws(() => decodeControl(pack([1, 2, 3])), isMalformed);
    assert.throws(() => decodeControl(Buffer.from([0xc1])), isMalformed);
  });

  it('never throws anything but a typed error on random bytes', () => {
    for (let i = 0; i < 2000; i++) {
      try {
        decodeControl(randomBytes(i % 64));
      } catch (err) {
        assert.ok(isMalformed(err), String(err));
      }
    }
  });
});
