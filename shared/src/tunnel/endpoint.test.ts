import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { FakeClock } from '../clock.js';
import { HoopError } from '../errors.js';
import { createLogger } from '../logger.js';
import { FrameConnection } from './connection.js';
import { TunnelEndpoint } from './endpoint.js';
import type { Frame } from './frame.js';
import { resolveLimits } from './limits.js';
import { MemorySocket } from './memory-socket.js';
import type { ControlMessage } from './messages.js';

/**
 * A CLI endpoint over memory sockets to a broker-side connection whose frames go to `onFrame`
 * (by default it takes opens and never answers them).
 */
async function brokerPair(
  onFrame: (
    broker: FrameConnection,
    frame: Frame,
    control: ControlMessage | undefined,
  ) => void = () => {},
): Promise<{ cli: TunnelEndpoint; broker: FrameConnection }> {
  const [cliEnd, brokerEnd] = MemorySocket.pair();
  const clock = new FakeClock(0);
  const limits = resolveLimits();
  const logger = createLogger({ level: 'error', write: () => {} });
  const broker = new FrameConnection(brokerEnd, {
    role: 'broker',
    side: 'server',
    limits,
    clock,
    logger,
  });
  broker.start(
    { onFrame: (frame, control) => onFrame(broker, frame, control), onClose: () => {} },
    { earlyData: true },
  );
  const cli = new TunnelEndpoint(cliEnd, { role: 'cli', limits, clock, logger });
  await cli.ready();
  return { cli, broker };
}

/** Runs `fn` and returns the uncaught exceptions it caused (by the next turn of the loop). */
async function uncaughtDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => {
    uncaught.push(err);
  };
  process.on('uncaughtException', onUncaught);
  try {
    await fn();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  return uncaught;
}

describe('TunnelEndpoint', () => {
  it('carries a tunnel: a CLI endpoint handshakes with a broker-side connection', async () => {
    const opens: string[] = [];
    const { cli, broker } = await brokerPair((side, frame, control) => {
      if (control?.t === 'open') {
        opens.push(control.connection);
        side.sendControl(frame.stream, {
          t: 'open-error',
          error: { code: 'CONNECTION_NOT_FOUND', message: `no connection ${control.connection}` },
        });
      }
    });
    await assert.rejects(cli.open({ t: 'open', connection: 'nowhere' }), {
      code: 'CONNECTION_NOT_FOUND',
    });
    assert.deepEqual(opens, ['nowhere']);
    const closed = once(cli, 'close');
    broker.close();
    await closed;
  });

  it('rejects an open the broker closes before answering, and nothing else throws', async () => {
    const { cli, broker } = await brokerPair();
    const uncaught = await uncaughtDuring(async () => {
      const opening = cli.open({ t: 'open', connection: 'db' }, Promise.resolve(Buffer.from('x')));
      await new Promise((r) => setImmediate(r));
      broker.sendControl(1, {
        t: 'close',
        error: { code: 'GRANT_REVOKED', message: 'the grant was revoked' },
      });
      await assert.rejects(opening, { code: 'GRANT_REVOKED' });
      assert.equal(cli.streamCount, 0);
      // The tunnel goes on: the next open gets the broker's answer.
      const next = cli.open({ t: 'open', connection: 'db' });
      await new Promise((r) => setImmediate(r));
      broker.sendControl(2, { t: 'open-error', error: { code: 'AGENT_OFFLINE', message: 'x' } });
      await assert.rejects(next, { code: 'AGENT_OFFLINE' });
    });
    assert.deepEqual(uncaught, [], 'a stream nobody holds yet emitted an error');
    broker.close();
  });

  it('ignores an admit for a stream it does not have, and the tunnel goes on', async () => {
    const { cli, broker } = await brokerPair((side, frame, control) => {
      if (control?.t === 'open') {
        side.sendControl(frame.stream, {
          t: 'open-error',
          error: { code: 'AGENT_OFFLINE', message: 'agent a is offline' },
        });
      }
    });
    const admitted: number[] = [];
    cli.on('admit', (stream) => admitted.push(stream.id));
    broker.sendControl(9, { t: 'admit' });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(admitted, []);
    assert.equal(cli.isOpen, true);
    await assert.rejects(cli.open({ t: 'open', connection: 'db' }), { code: 'AGENT_OFFLINE' });
    broker.close();
  });

  it('rejects an open still unanswered when the tunnel closes, and nothing else throws', async () => {
    const { cli, broker } = await brokerPair();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    try {
      // With early data on its way, as `hoop connect` opens a stream for a new client.
      const opening = cli.open({ t: 'open', connection: 'db' }, Promise.resolve(Buffer.from('x')));
      await new Promise((r) => setImmediate(r));
      assert.equal(cli.streamCount, 1);
      const closed = once(cli, 'close');
      broker.close(new HoopError('HEARTBEAT_TIMEOUT', 'no heartbeat from peer for 30000 ms'));
      await assert.rejects(opening, { code: 'HEARTBEAT_TIMEOUT' });
      await closed;
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(uncaught, [], 'a stream nobody holds yet emitted an error');
      assert.equal(cli.streamCount, 0);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
