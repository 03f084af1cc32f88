/** `hoop grants request|list|revoke` against a real in-process broker. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent } from '@hoop/agent';
import { type Broker, startBroker } from '@hoop/broker';
import { ExitCode, silentLogger } from '@hoop/shared';
import pg from 'pg';

const HOOP = fileURLToPath(new URL('../../bin/hoop.js', import.meta.url));

/** Runs the real `hoop` binary (a child process, so its stdout is its own). */
function run(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [HOOP, ...argv],
      { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

describe('hoop grants', () => {
  let dir: string;
  let broker: Broker;
  let agent: Agent;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-cli-grants-'));
    const adminToken = `hoop_pat_${randomBytes(24).toString('base64url')}`;
    broker = await startBroker(
      { listen: '127.0.0.1:0', dataDir: join(dir, 'data'), adminToken },
      { logger: silentLogger },
    );
    const created = await broker.store.createAgent('a1');
    agent = new Agent({ brokerUrl: broker.url, token: created.token, logger: silentLogger });
    agent.start();
    await agent.waitConnected(10_000);
    await broker.store.createConnection({
      name: 'db',
      agent: 'a1',
      type: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'test',
      tls: 'disable',
    });
    env = {
      HOOP_CONFIG: join(dir, 'config.json'),
      HOOP_BROKER_URL: broker.url,
      HOOP_TOKEN: adminToken,
    };
  });

  after(async () => {
    await agent.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

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
    const child = spawn(process.execPath, [HOOP, '--json', 'connect', 'db', '--port', '0'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOOP_CONFIG: env['HOOP_CONFIG'] as string,
        HOOP_BROKER_URL: broker.url,
        HOOP_GRANT: minted.grant,
      },
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
