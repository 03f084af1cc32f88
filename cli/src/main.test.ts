/** The CLI's contract at its edges: exit codes, --json errors, the config file's mode. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExitCode } from '@hoop/shared';
import { configPath, loadConfig, writeConfigFile } from './config.js';
import { main } from './main.js';

function capture(): { restore(): string } {
  const writes: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  return {
    restore: () => {
      process.stderr.write = original;
      return writes.join('');
    },
  };
}

describe('hoop CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 2 on usage errors', async () => {
    const err = capture();
    const code = await main(['node', 'hoop', 'connect'], { HOOP_CONFIG: join(dir, 'none.json') });
    err.restore();
    assert.equal(code, ExitCode.usage);
  });

  it('exits 6 with a hint when the broker is unreachable, as JSON with --json', async () => {
    const err = capture();
    const code = await main(['node', 'hoop', '--json', 'admin', 'agents', 'list'], {
      HOOP_CONFIG: join(dir, 'none.json'),
      HOOP_BROKER_URL: 'http://127.0.0.1:1',
      HOOP_TOKEN: 'hoop_pat_x',
    });
    const text = err.restore();
    assert.equal(code, ExitCode.unreachable);
    const parsed = JSON.parse(text) as { error: { code: string; hint: string } };
    assert.equal(parsed.error.code, 'BROKER_UNREACHABLE');
    assert.match(parsed.error.hint, /HOOP_BROKER_URL/);
    assert.ok(!text.includes('hoop_pat_x'), 'the token must not appear in errors');
  });

  it('tells you to log in when no broker is configured', async () => {
    const err = capture();
    const code = await main(['node', 'hoop', 'connect', 'demo'], {
      HOOP_CONFIG: join(dir, 'none.json'),
    });
    const text = err.restore();
    assert.equal(code, ExitCode.usage);
    assert.match(text, /hoop login --broker/);
  });

  it('writes the config file 0600 and lets the environment override it', async () => {
    const path = join(dir, 'sub', 'config.json');
    await writeConfigFile(path, { brokerUrl: 'http://file:1', token: 'file-token' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
      brokerUrl: 'http://file:1',
      token: 'file-token',
    });
    const fromFile = await loadConfig({ HOOP_CONFIG: path });
    assert.equal(fromFile.brokerUrl, 'http://file:1');
    const fromEnv = await loadConfig({
      HOOP_CONFIG: path,
      HOOP_BROKER_URL: 'http://env:2',
      HOOP_TOKEN: 'env-token',
    });
    assert.equal(fromEnv.brokerUrl, 'http://env:2');
    assert.equal(fromEnv.token, 'env-token');
    assert.equal(configPath({ HOME: '/h' }), '/h/.config/hoop/config.json');
    assert.equal(configPath({ XDG_CONFIG_HOME: '/x' }), '/x/hoop/config.json');
  });
});
