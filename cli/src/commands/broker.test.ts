/**
 * `hoop broker start --json` as a script reads it: one JSON document with what to connect to,
 * the native Postgres endpoint's port included when it listens on port 0.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { startHoop } from '../testing/hoop-binary.js';

describe('hoop broker start --json', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('prints url, data dir, admin token file and the native endpoint port it bound', async () => {
    const home = await mkdtemp(join(tmpdir(), 'hoop-broker-json-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    const broker = startHoop(
      [
        ...['broker', 'start', '--listen', '127.0.0.1:0', '--pg-listen', '127.0.0.1:0'],
        ...['--data-dir', join(home, 'data'), '--json'],
      ],
      { HOME: home, HOOP_LOG_LEVEL: 'warn' },
    );
    cleanups.push(async () => {
      broker.child.kill('SIGTERM');
      await broker.exited;
    });
    let ready: { url: string; dataDir: string; adminTokenFile: string; pgPort: number } | undefined;
    for (let i = 0; i < 300 && ready === undefined; i++) {
      try {
        ready = JSON.parse(broker.state.out);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(ready !== undefined, `no JSON document on stdout: ${broker.state.err}`);
    assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(ready.dataDir, join(home, 'data'));
    assert.ok(Number.isInteger(ready.pgPort) && ready.pgPort > 0, `pgPort: ${ready.pgPort}`);
    // The port is the broker's endpoint: a hoop token gets as far as the connection lookup.
    const token = (await readFile(ready.adminTokenFile, 'utf8')).trim();
    const client = new pg.Client({
      host: '127.0.0.1',
      port: ready.pgPort,
      user: 'no-such-connection',
      password: token,
      database: 'x',
      ssl: false,
    });
    await assert.rejects(client.connect(), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, '3D000', String(e.message));
      assert.ok(!String(e.message).includes(token));
      return true;
    });
  });

  it('exits 2 on a HOOP_DATABASE_PREPARE that is neither on nor off', async () => {
    const home = await mkdtemp(join(tmpdir(), 'hoop-broker-prepare-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    const broker = startHoop(
      ['broker', 'start', '--listen', '127.0.0.1:0', '--data-dir', join(home, 'data')],
      { HOME: home, HOOP_DATABASE_PREPARE: 'sometimes' },
    );
    assert.equal(await broker.exited, 2, broker.state.err);
    assert.match(broker.state.err, /HOOP_DATABASE_PREPARE must be on or off, not "sometimes"/);
  });
});
