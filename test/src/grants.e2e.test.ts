/**
 * Issue 3's whole path with real processes: a CI job with nothing but its CI system's OIDC token
 * exchanges it for a grant under a trust policy, psql reaches the connection through
 * `hoop connect` with that grant (no login, no stored secret), and revoking the grant closes the
 * live psql session within seconds. A token whose claims do not match gets 403 TRUST_NO_MATCH.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Deployment } from './support/deployment.js';
import { type ConnectProcess, runHoop, startConnect } from './support/hoop.js';
import { psqlValue, spawnPsql } from './support/psql.js';
import { machinePostgres } from './support/targets.js';
import { withTimeout } from './support/wait.js';

interface CiIssuer {
  readonly url: string;
  mint(claims: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

/** A CI system's token issuer: OIDC discovery + JWKS over HTTP on loopback, ES256 tokens. */
async function startCiIssuer(): Promise<CiIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ci-1', alg: 'ES256', use: 'sig' };
  let url = '';
  const server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer: url, jwks_uri: `${url}/jwks` }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    mint: (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'ci-1' })
        .setIssuer(url)
        .setAudience('hoop')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function requestGrant(
  brokerUrl: string,
  bearer: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL('/api/v1/grants', brokerUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ connection: 'orders', ttl: '5m', reason: 'deploy #42' }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('CI token → grant → psql → revoke', { timeout: 180_000 }, () => {
  let d: Deployment;
  let issuer: CiIssuer;

  before(async () => {
    issuer = await startCiIssuer();
    d = await Deployment.start();
    await d.addAgent('edge');
    await d.addConnection('orders', { agent: 'edge', target: machinePostgres() });
    for (const args of [
      ['admin', 'serviceaccounts', 'create', 'ci-bot', '--group', 'deployers'],
      [
        'admin',
        'access',
        'allow',
        '--group',
        'deployers',
        '--connection',
        'orders',
        '--actions',
        'connect',
      ],
      ['admin', 'trust', 'create', 'acme-ci', '--issuer', issuer.url, '--audience', 'hoop'].concat([
        '--subject',
        'repo:acme/app:*',
        '--claim',
        'repository=acme/app',
        '--serviceaccount',
        'ci-bot',
      ]),
    ]) {
      const r = await runHoop(args, d.adminEnv());
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  after(async () => {
    await d?.dispose();
    await issuer?.close();
  });

  test('a matching CI token gets a grant; psql works with it and is cut off when it is revoked', async () => {
    const ciToken = await issuer.mint({
      sub: 'repo:acme/app:ref:refs/heads/main',
      repository: 'acme/app',
    });
    const minted = await requestGrant(d.broker.url, ciToken);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const { id, grant } = minted.body as { id: string; grant: string };

    // The job's environment: the broker URL and the grant; no login, no token, no DB secret.
    const conn: ConnectProcess = await startConnect('orders', {
      HOME: d.adminEnv()['HOME'],
      HOOP_CONFIG: `${d.adminEnv()['HOME']}/grant-only.json`,
      HOOP_BROKER_URL: d.broker.url,
      HOOP_GRANT: grant,
    });
    try {
      assert.equal(await psqlValue(conn.url, 'select 40 + 2'), '42');
      const live = spawnPsql(conn.url, 'select pg_sleep(60)');
      await new Promise((r) => setTimeout(r, 1_000));
      const revoked = await runHoop(['grants', 'revoke', id], d.adminEnv());
      assert.equal(revoked.code, 0, revoked.stderr);
      const exit = await withTimeout(live.exited, 10_000, 'psql to be cut off after the revoke');
      assert.notEqual(exit.code, 0);
      assert.match(live.stderr, /revoked|GRANT_REVOKED|terminat/i);
      // The revoked grant opens nothing any more.
      const again = await runHoop(['connect', 'orders', '--port', '0'], {
        HOME: d.adminEnv()['HOME'],
        HOOP_CONFIG: `${d.adminEnv()['HOME']}/grant-only.json`,
        HOOP_BROKER_URL: d.broker.url,
        HOOP_GRANT: grant,
      });
      assert.equal(again.code, 3, again.stderr);
    } finally {
      await conn.stop();
    }
  });

  test('a CI token whose claims do not match any trust policy is refused', async () => {
    const other = await issuer.mint({
      sub: 'repo:evil/app:ref:refs/heads/main',
      repository: 'evil/app',
    });
    const refused = await requestGrant(d.broker.url, other);
    assert.equal(refused.status, 403);
    assert.equal((refused.body['error'] as { code: string }).code, 'TRUST_NO_MATCH');
  });
});
