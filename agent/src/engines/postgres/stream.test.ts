/**
 * Bounded memory: a 1,000,000-row result with masking on streams through the policy proxy
 * (every row is re-encoded by a detector) while the engine process's memory stays flat.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { PostgresEngine } from './engine.js';
import { BackendCode } from './messages.js';
import { examplePolicy, LOCAL } from './policy-test-kit.js';
import { encodeQuery } from './protocol.js';
import { PacketReader } from './reader.js';
import { pgTarget, startEngineServer } from './test-harness.js';
import { startupMessage } from './writer.js';

describe('streaming with masking on', () => {
  it('streams 1,000,000 masked rows with bounded memory', { timeout: 240_000 }, async () => {
    const engine = new PostgresEngine();
    await using server = await startEngineServer({
      engine,
      target: pgTarget(LOCAL),
      password: undefined,
      policy: examplePolicy('public'),
    });
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await once(socket, 'connect');
    const reader = new PacketReader({
      side: 'target',
      maxStartupBytes: 8,
      maxMessageBytes: 1 << 20,
    });
    let rows = 0;
    let masked = 0;
    let ready = 0;
    let peak = 0;
    let wake: (() => void) | undefined;
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let m = reader.nextFrame(); m !== undefined; m = reader.nextFrame()) {
        if (m.code === BackendCode.dataRow) {
          rows++;
          if (m.body.includes('[redacted:email]')) masked++;
        } else if (m.code === BackendCode.readyForQuery) {
          ready++;
          wake?.();
        }
      }
      if (rows % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().rss - baseline);
    });
    const readyCount = (n: number) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (ready >= n) resolve();
          else wake = check;
        };
        check();
      });
    socket.write(
      startupMessage([
        ['user', 'x'],
        ['database', 'y'],
      ]),
    );
    await readyCount(1);
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss - baseline);
    }, 50);
    socket.write(
      encodeQuery(
        "select i, 'user' || i || '@example.com' as email, repeat('x', 50) as pad from generate_series(1, 1000000) i",
      ),
    );
    await readyCount(2);
    clearInterval(sampler);
    socket.destroy();
    assert.equal(rows, 1_000_000);
    assert.equal(masked, 1_000_000);
    assert.ok(peak < 100 * 1024 * 1024, `rss grew by ${Math.round(peak / 1048576)} MB`);
  });
});
