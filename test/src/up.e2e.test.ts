/**
 * The quick start: `hoop up` (what `npm start` runs) brings up broker, embedded agent and the demo
 * database in one process and logs the CLI in; `hoop connect demo` then works from that login
 * alone (the config file, no HOOP_* variables) and psql reads the demo data.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, tempDir } from './support/env.js';
import { READY_TIMEOUT_MS, spawnHoop, startConnect } from './support/hoop.js';
import type { ChildHandle } from './support/process.js';
import { psqlValue } from './support/psql.js';
import { Scope } from './support/scope.js';

interface UpReady {
  broker: string;
  dataDir: string;
  connection: string;
  loggedIn: boolean;
  config: string;
  next: string[];
}

describe('hoop up', { timeout: 120_000 }, () => {
  const scope = new Scope();
  const { env } = isolatedEnv();
  let up: ChildHandle;
  let ready: UpReady;

  before(
    async () => {
      const dataDir = join(tempDir('up'), 'data');
      up = scope.use(
        spawnHoop(
          'hoop up',
          ['up', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--json'],
          env,
        ),
      );
      ready = await up.waitForJson<UpReady>(READY_TIMEOUT_MS, 'hoop up to be ready');
    },
    { timeout: 90_000 },
  );

  after(() => scope.dispose());

  test('prints what to run next and logs this CLI in', () => {
    assert.equal(ready.connection, 'demo');
    assert.equal(ready.loggedIn, true);
    assert.equal(ready.config, env['HOOP_CONFIG']);
    assert.ok(
      ready.next.some((step) => step.includes('hoop connect demo')),
      ready.next.join('\n'),
    );
    assert.ok(
      ready.next.some((step) => step.startsWith('psql ')),
      ready.next.join('\n'),
    );
  });

  test('hoop connect demo works from the login alone, and psql reads the demo data', async () => {
    assert.equal(env['HOOP_BROKER_URL'], undefined);
    assert.equal(env['HOOP_TOKEN'], undefined);
    const conn = scope.use(await startConnect('demo', env));
    const count = Number(await psqlValue(conn.url, 'select count(*) from customers'));
    assert.ok(count > 0, `the demo customers table has ${count} rows`);
    const row = await psqlValue(conn.url, 'select name, email from customers order by 1 limit 1');
    assert.match(row, /^.+\|.+@.+$/);
  });
});
