/** `hoop grants request|list|revoke` against a real in-process broker. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Broker } from '@hoop/broker';
import { addLocalPgConnection, startTestBroker, type TestBroker } from '@hoop/broker/testing';
import { ExitCode } from '@hoop/shared';
import pg from 'pg';
import { runHoop as run, startHoop } from '../testing/hoop-binary.js';

describe('hoop grants', () => {
  let t: TestBroker;
  let broker: Broker;
  let env: Record<string, string>;

  before(async () => {
    t = await startTestBroker({ prefix: 'hoop-cli-grants-', dataSubdir: 'data' });
    broker = t.broker;
    await t.startAgent('a1');
    await addLocalPgConnection(broker, 'db', 'a1');
    env = {
      HOOP_CONFIG: join(t.dir, 'config.json'),
      HOOP_BROKER_URL: broker.url,
      HOOP_TOKEN: t.adminToken,
    };
  });

  after(() => t.close());

  it('requests, lists and revokes a grant', async () => {
    const requested = await run(
      ['--json', 'grants', 'request', 'db', '--ttl', '10m', '--reason', 'ticket 7'],
      env,
    );
    assert.equal(requested.code, ExitCode.ok, requested.err);
    const minted = JSON.parse(requested.out) as { id: string; grant: string; expiresAt: string };
    assert.deepEqual(Object.keys(minted), ['id', 'grant', 'expiresAt']);
    assert.match(minted.grant, /^eyJ/);

    const listed = await run(['--json', 'grants', 'list'], env);
    assert.equal(listed.code, ExitCode.ok);
    const list = JSON.parse(listed.out) as { id: string; reason: string; status: string }[];
    assert.ok(
      list.some((g) => g.id === minted.id && g.reason === 'ticket 7' && g.status === 'active'),
    );
    assert.ok(!listed.out.includes(minted.grant));

    const revoked = await run(['grants', 'revoke', minted.id], env);
    assert.equal(revoked.code, ExitCode.ok, revoked.err);
    assert.match(revoked.out, /revoked grant/);
    assert.ok(!revoked.out.includes(minted.grant));
  });

  it('maps failures to exit codes', async () => {
    assert.equal((await run(['grants', 'request', 'nope'], env)).code, ExitCode.notFound);
    assert.equal(
      (await run(['grants', 'request', 'db', '--ttl', 'forever'], env)).code,
      ExitCode.usage,
    );
    assert.equal((await run(['grants', 'revoke', 'no-such-id'], env)).code, ExitCode.notFound);
  });

  it('refuses `connect --grant` with a revoked grant before listening', async () => {
    const minted = JSON.parse((await run(['--json', 'grants', 'request', 'db'], env)).out) as {
      id: string;
      grant: string;
    };
    await run(['grants', 'revoke', minted.id], env);
    const noLogin = { HOOP_CONFIG: env['HOOP_CONFIG'] as string, HOOP_BROKER_URL: broker.url };
    const connect = await run(['--json', 'connect', 'db', '--grant', minted.grant], noLogin);
    assert.equal(connect.code, ExitCode.denied);
    assert.match(connect.err, /GRANT_REVOKED/);
    assert.ok(!connect.err.includes(minted.grant));
    const viaEnv = await run(['--json', 'connect', 'db'], { ...noLogin, HOOP_GRANT: minted.grant });
    assert.equal(viaEnv.code, ExitCode.denied);
  });

  it('connects with only a grant (HOOP_GRANT), no login', async () => {
    const minted = JSON.parse((await run(['--json', 'grants', 'request', 'db'], env)).out) as {
      grant: string;
    };
    const { child } = startHoop(['--json', 'connect', 'db', '--port', '0'], {
      HOOP_CONFIG: env['HOOP_CONFIG'] as string,
      HOOP_BROKER_URL: broker.url,
      HOOP_GRANT: minted.grant,
    });
    try {
      const ready = await new Promise<{ port: number }>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const end = out.indexOf('}\n');
          if (end >= 0) resolve(JSON.parse(out.slice(0, end + 1)) as { port: number });
        });
        child.on('exit', (code) => reject(new Error(`hoop connect exited with ${code}`)));
      });
      const c = new pg.Client({
        host: '127.0.0.1',
        port: ready.port,
        user: 'postgres',
        database: 'test',
      });
      await c.connect();
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
      await c.end();
    } finally {
      child.kill('SIGINT');
    }
  });
});
