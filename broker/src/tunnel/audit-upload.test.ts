/**
 * The broker's audit group commit must keep up with a busy agent: a group large enough is
 * appended at once, not after the append interval (which capped one agent's upload at what it
 * may have in flight per interval). The broker runs on a fake clock that never moves unless
 * told, so anything that waits for the interval visibly does not happen.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EngineSession } from '@hoop/agent';
import { createLogger, FakeClock } from '@hoop/shared';
import type { Broker } from '../broker.js';
import {
  addEchoConnection,
  EchoEngine,
  echoEngines,
  startTestBroker,
  type TestBroker,
} from '../testing/index.js';

const EVENTS = 5_000;

/** Records `events` statements as soon as the session opens, then echoes. */
class BusyEngine extends EchoEngine {
  constructor(private readonly events = EVENTS) {
    super();
  }

  override serve(session: EngineSession): Promise<void> {
    for (let i = 0; i < this.events; i++) {
      session.audit({
        type: 'statement',
        session: session.sessionId,
        at: Date.now(),
        text: `select ${i}`,
        durationMs: 0,
      });
    }
    return super.serve(session);
  }
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('audit upload from a busy agent', () => {
  const clock = new FakeClock(Date.now());
  let t: TestBroker;
  let broker: Broker;

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-audit-upload-', start: { clock } });
    broker = t.broker;
    await t.startAgent('busy-agent', { engines: echoEngines(new BusyEngine()) });
    await addEchoConnection(broker, 'busy', 'busy-agent');
  });

  after(() => t.close());

  it('appends full groups without waiting for the interval, and the rest once it passes', async () => {
    const client = t.tunnel();
    try {
      const { stream, session } = await client.open({ t: 'open', connection: 'busy' });
      const statements = async () =>
        (await broker.store.listSessionEvents(session, 10_000)).filter(
          (e) => e.event.type === 'statement',
        ).length;
      // Without the clock moving, every group of a full size is stored.
      await until('full groups to be stored', async () => (await statements()) >= EVENTS - 1_000);
      // The tail waits for the interval; once it passes, everything is there.
      clock.advance(1_000);
      await until('every statement to be stored', async () => (await statements()) === EVENTS);
      stream.destroy();
    } finally {
      client.close();
    }
  });
});

describe('closing the broker while an agent uploads audit events', () => {
  it('lets the running append finish before the store closes, and drops the waiting ones', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(l) });
    // The clock never moves: a group under the ready size would wait for ever, so close()
    // resolving shows that shutdown does not wait for the append interval.
    const clock = new FakeClock(Date.now());
    const t = await startTestBroker({ prefix: 'hoop-audit-close-', start: { clock }, logger });
    try {
      await t.startAgent('busy-agent', { engines: echoEngines(new BusyEngine(40_000)) });
      await addEchoConnection(t.broker, 'busy', 'busy-agent');
      const client = t.tunnel();
      const { stream, session } = await client.open({ t: 'open', connection: 'busy' });
      stream.on('error', () => {}); // the shutdown ends it
      // Appends now run back to back; close while one is under way.
      await until(
        'the first groups to be stored',
        async () => (await t.broker.store.listSessionEvents(session, 10)).length > 1,
      );
      await t.broker.close();
      const failures = lines.filter((l) => JSON.parse(l).level === 'error');
      assert.deepEqual(failures, [], 'no append failed because the store closed under it');
      client.close();
    } finally {
      await t.close();
    }
  });
});
