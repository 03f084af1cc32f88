/**
 * The identity commands as a user runs them: the real `hoop` binary (child processes, passwords
 * on stdin, never argv) against a real broker in this process, and `hoop login` through a real
 * OpenID provider (oidc-provider, in this process) whose browser side is driven with fetch and a
 * cookie jar: authorization URL → login form → consent → the CLI's loopback callback.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Broker } from '@hoop/broker';
import {
  addEchoConnection,
  echoEngines,
  startTestBroker,
  type TestBroker,
} from '@hoop/broker/testing';
import { silentLogger, TunnelClient } from '@hoop/shared';
import { Provider } from 'oidc-provider';
import { HOOP_BIN as BIN } from '../testing/hoop-binary.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hoop(
  args: string[],
  env: Record<string, string>,
  options: { stdin?: string; onStderr?: (text: string) => void } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: env['HOME'] ?? tmpdir(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      options.onStderr?.(stderr);
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A browser that keeps cookies per origin (enough for oidc-provider's interaction cookies). */
class Browser {
  private readonly jar = new Map<string, string>();
  async get(url: string, init: RequestInit = {}): Promise<Response> {
    const host = new URL(url).host;
    const cookie = this.jar.get(host);
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    const set = res.headers.getSetCookie();
    if (set.length > 0) {
      const cookies = new Map(
        (this.jar.get(host) ?? '')
          .split('; ')
          .filter(Boolean)
          .map((c) => [c.split('=')[0] as string, c]),
      );
      for (const line of set) {
        const pair = line.split(';')[0] as string;
        cookies.set(pair.split('=')[0] as string, pair);
      }
      this.jar.set(host, [...cookies.values()].join('; '));
    }
    return res;
  }
  /** Follows redirects (GET) until one leaves `origin`, returning that URL; or the final page. */
  async follow(url: string, origin: string): Promise<{ url: string; html?: string }> {
    let current = url;
    for (let i = 0; i < 10; i++) {
      if (!current.startsWith(origin)) return { url: current };
      const res = await this.get(current);
      const location = res.headers.get('location');
      if (location === null) return { url: current, html: await res.text() };
      await res.arrayBuffer();
      current = new URL(location, current).toString();
    }
    throw new Error('too many redirects');
  }
  async submit(pageUrl: string, html: string, fields: Record<string, string>): Promise<string> {
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    assert.ok(action, 'the page has a form');
    const res = await this.get(new URL(action.replace(/&amp;/g, '&'), pageUrl).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const location = res.headers.get('location');
    assert.ok(location, `the form answered ${res.status}`);
    return new URL(location, pageUrl).toString();
  }
}

describe('hoop identity commands and logins', () => {
  let t: TestBroker;
  let dir: string;
  let broker: Broker;
  let idp: Server;
  let issuer: string;
  let adminToken: string;
  let callbackPort: number;
  let adminEnv: Record<string, string>;

  before(async () => {
    callbackPort = await freePort();

    // the identity provider: one confidential client, accounts with a groups claim
    let handler: ((req: never, res: never) => void) | undefined;
    idp = createServer((req, res) => handler?.(req as never, res as never));
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'hoop-cli',
          client_secret: 'a-client-secret-for-tests-only',
          redirect_uris: [`http://127.0.0.1:${callbackPort}/callback`],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      findAccount: async (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: async () => ({
          sub: id,
          preferred_username: id,
          email: `${id}@example.com`,
          groups: id === 'carol' ? ['dba', 'people'] : ['people'],
        }),
      }),
      claims: {
        openid: ['sub'],
        profile: ['preferred_username', 'name'],
        email: ['email'],
        groups: ['groups'],
      },
      pkce: { required: () => true },
      features: { devInteractions: { enabled: true } },
      cookies: { keys: ['oidc-test-cookie-key'] },
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    });
    handler = provider.callback() as never;

    t = await startTestBroker({
      prefix: 'hoop-cli-identity-',
      config: () => ({
        oidcIssuer: issuer,
        oidcClientId: 'hoop-cli',
        oidcClientSecret: 'a-client-secret-for-tests-only',
      }),
    });
    ({ broker, dir, adminToken } = t);
    await t.startAgent('echo-agent', { engines: echoEngines() });
    for (const name of ['orders', 'billing']) {
      await addEchoConnection(broker, name, 'echo-agent');
    }
    adminEnv = {
      HOME: dir,
      HOOP_CONFIG: join(dir, 'admin.json'),
      HOOP_BROKER_URL: broker.url,
      HOOP_TOKEN: adminToken,
    };
  });

  after(async () => {
    await t.close();
    idp.closeAllConnections();
    await new Promise((r) => idp.close(r));
  });

  it('admin users create (password on stdin, never argv), list, and a local login', async () => {
    const created = await hoop(
      ['--json', 'admin', 'users', 'create', 'alice', '--group', 'dba', '--password-stdin'],
      adminEnv,
      { stdin: 'alice-password-123\n' },
    );
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout).groups, ['dba']);
    const list = await hoop(['--json', 'admin', 'users', 'list'], adminEnv);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { name: string }[]).map((u) => u.name),
      ['admin', 'alice'],
    );

    const config = join(dir, 'alice.json');
    const env = { HOME: dir, HOOP_CONFIG: config };
    const wrong = await hoop(
      ['--json', 'login', '--broker', broker.url, '--user', 'alice', '--password-stdin'],
      env,
      { stdin: 'not-her-password\n' },
    );
    assert.equal(wrong.code, 3);
    assert.equal(JSON.parse(wrong.stderr).error.code, 'AUTH_INVALID_TOKEN');
    const login = await hoop(
      ['--json', 'login', '--broker', broker.url, '--user', 'alice', '--password-stdin'],
      env,
      { stdin: 'alice-password-123\n' },
    );
    assert.equal(login.code, 0, login.stderr);
    assert.equal(JSON.parse(login.stdout).user, 'alice');
    assert.equal((await stat(config)).mode & 0o777, 0o600);
    assert.match(await readFile(config, 'utf8'), /hoop_pat_/);

    const disabled = await hoop(['--json', 'admin', 'users', 'disable', 'alice'], adminEnv);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal(JSON.parse(disabled.stdout).disabled, true);
    const after = await hoop(['--json', 'admin', 'agents', 'list'], env);
    assert.equal(after.code, 3);
    assert.equal((await hoop(['admin', 'users', 'enable', 'alice'], adminEnv)).code, 0);
  });

  it('service accounts and API keys: create --json prints {id,key}; list; delete', async () => {
    assert.equal(
      (await hoop(['admin', 'serviceaccounts', 'create', 'deployer', '--group', 'ci'], adminEnv))
        .code,
      0,
    );
    const created = await hoop(
      ['--json', 'admin', 'apikeys', 'create', '--serviceaccount', 'deployer', '--expires', '30d'],
      adminEnv,
    );
    assert.equal(created.code, 0, created.stderr);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    assert.match(key, /^hoop_sak_/);
    const whoami = await fetch(`${broker.url}/api/v1/whoami`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(((await whoami.json()) as { name: string }).name, 'deployer');
    const list = await hoop(
      ['--json', 'admin', 'apikeys', 'list', '--serviceaccount', 'deployer'],
      adminEnv,
    );
    assert.ok(!list.stdout.includes(key));
    assert.equal((JSON.parse(list.stdout) as { id: string }[])[0]?.id, id);
    assert.equal((await hoop(['admin', 'apikeys', 'delete', id], adminEnv)).code, 0);
    const denied = await hoop(['--json', 'admin', 'agents', 'list'], {
      ...adminEnv,
      HOOP_TOKEN: key,
    });
    assert.equal(denied.code, 3);
    assert.ok(!denied.stderr.includes(key));
    const sas = await hoop(['--json', 'admin', 'serviceaccounts', 'list'], adminEnv);
    assert.equal((JSON.parse(sas.stdout) as { name: string }[])[0]?.name, 'deployer');
  });

  it('access allow/list/revoke and trust create/list/delete', async () => {
    const allow = await hoop(
      [
        '--json',
        'admin',
        'access',
        'allow',
        '--group',
        'dba',
        '--connection',
        'orders',
        '--actions',
        'connect,exec',
      ],
      adminEnv,
    );
    assert.equal(allow.code, 0, allow.stderr);
    const usage = await hoop(
      ['admin', 'access', 'allow', '--group', 'dba', '--actions', 'connect'],
      adminEnv,
    );
    assert.equal(usage.code, 2);
    assert.equal(
      (
        await hoop(
          ['admin', 'access', 'allow', '--group', 'x', '--tag', 'prod', '--actions', 'connect'],
          adminEnv,
        )
      ).code,
      0,
    );
    assert.equal(
      (await hoop(['admin', 'access', 'revoke', '--group', 'x', '--tag', 'prod'], adminEnv)).code,
      0,
    );
    const list = await hoop(['--json', 'admin', 'access', 'list'], adminEnv);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { group: string; connection: string }[]).map((r) => [
        r.group,
        r.connection,
      ]),
      [['dba', 'orders']],
    );

    const trust = await hoop(
      [
        '--json',
        'admin',
        'trust',
        'create',
        'app-main',
        '--issuer',
        'https://token.actions.githubusercontent.com',
        '--audience',
        'hoop',
        '--subject',
        'repo:org/app:*',
        '--claim',
        'repository=org/app',
        '--claim',
        'ref=refs/heads/main',
        '--serviceaccount',
        'deployer',
      ],
      adminEnv,
    );
    assert.equal(trust.code, 0, trust.stderr);
    assert.deepEqual(JSON.parse(trust.stdout).claims, {
      repository: 'org/app',
      ref: 'refs/heads/main',
    });
    const tl = await hoop(['--json', 'admin', 'trust', 'list'], adminEnv);
    assert.equal((JSON.parse(tl.stdout) as unknown[]).length, 1);
    assert.equal((await hoop(['admin', 'trust', 'delete', 'app-main'], adminEnv)).code, 0);
  });

  it('a person logs in through the real OIDC provider (code + PKCE, loopback) and connects', async () => {
    const config = join(dir, 'carol.json');
    let authorizationUrl: string | undefined;
    let seen: (url: string) => void = () => {};
    const urlSeen = new Promise<string>((r) => {
      seen = r;
    });
    const running = hoop(
      [
        '--json',
        'login',
        '--broker',
        broker.url,
        '--callback-port',
        String(callbackPort),
        '--no-browser',
      ],
      { HOME: dir, HOOP_CONFIG: config, CI: '1' },
      {
        onStderr: (text) => {
          const match = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/.exec(text);
          if (match?.[1] && authorizationUrl === undefined) {
            authorizationUrl = match[1];
            seen(match[1]);
          }
        },
      },
    );
    const url = await Promise.race([
      urlSeen,
      running.then((r) => {
        throw new Error(`login exited early: ${r.stderr}`);
      }),
    ]);
    const parsed = new URL(url);
    assert.equal(parsed.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(parsed.searchParams.get('nonce'));

    const browser = new Browser();
    let step = await browser.follow(url, issuer);
    assert.ok(step.html?.includes('name="login"'), 'the login form');
    let next = await browser.submit(step.url, step.html as string, {
      prompt: 'login',
      login: 'carol',
      password: 'anything',
    });
    step = await browser.follow(next, issuer);
    if (step.html !== undefined) {
      next = await browser.submit(step.url, step.html, { prompt: 'consent' });
      step = await browser.follow(next, issuer);
    }
    assert.ok(step.url.startsWith(`http://127.0.0.1:${callbackPort}/callback?`), step.url);
    const callback = await fetch(step.url);
    assert.equal(callback.status, 200);
    await callback.text();

    const result = await running;
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as { user: string; role: string; expiresAt: string };
    assert.equal(out.user, 'carol');
    assert.equal(out.role, 'user');
    assert.equal((await stat(config)).mode & 0o777, 0o600);
    const { token } = JSON.parse(await readFile(config, 'utf8')) as { token: string };

    // groups came from the provider's claim: dba may use orders, not billing
    const list = await fetch(`${broker.url}/api/v1/connections`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual(
      ((await list.json()) as { name: string }[]).map((c) => c.name),
      ['orders'],
    );
    const client = new TunnelClient({ brokerUrl: broker.url, token, logger: silentLogger });
    try {
      const { stream } = await client.open({ t: 'open', connection: 'orders' });
      const echoed = new Promise<string>((r) => stream.once('data', (d: Buffer) => r(String(d))));
      stream.write('hello');
      assert.equal(await echoed, 'hello');
      stream.destroy();
      await assert.rejects(client.open({ t: 'open', connection: 'billing' }));
    } finally {
      client.close();
    }

    // a replayed callback (state consumed) fails with OIDC_FAILED
    const replay = await fetch(`${broker.url}/api/v1/auth/oidc/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code: new URL(step.url).searchParams.get('code'),
        state: new URL(step.url).searchParams.get('state'),
      }),
    });
    assert.equal(replay.status, 401);
    assert.equal(((await replay.json()) as { error: { code: string } }).error.code, 'OIDC_FAILED');
  });

  it('refuses a redirect that is not loopback', async () => {
    const res = await fetch(`${broker.url}/api/v1/auth/oidc/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUri: 'https://evil.example/callback' }),
    });
    assert.equal(res.status, 400);
  });
});
