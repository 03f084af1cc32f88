/** The agent's grant check: every way a grant can be wrong, and the JWKS cache's bounds. */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { FakeClock, HoopError, silentLogger } from '@hoop/shared';
import { JwksCache, jwksUrl } from './jwks.js';
import { VerifiedGrants } from './verified-grants.js';
import { verifyGrant } from './verify.js';

const NOW = 1_700_000_000_000;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function keyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

const good = keyPair();
const other = keyPair();

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'hoop-broker',
    aud: 'hoop',
    sub: 'u1',
    name: 'alice',
    conn: 'db',
    act: ['connect'],
    iat: NOW / 1000 - 5,
    exp: NOW / 1000 + 600,
    jti: 'g1',
    ...over,
  };
}

function jwt(
  payload: Record<string, unknown>,
  key: KeyObject = good.privateKey,
  header: Record<string, unknown> = { alg: 'EdDSA', kid: 'k1', typ: 'hoop-grant+jwt' },
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

const options = {
  key: async (kid: string) => (kid === 'k1' ? good.publicKey : undefined),
  now: NOW,
  connection: 'db',
};

async function refused(token: unknown, code: string, opts = options): Promise<HoopError> {
  let caught: unknown;
  try {
    await verifyGrant(token, opts);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HoopError, `expected ${code}`);
  assert.equal(caught.code, code);
  if (typeof token === 'string' && token.length > 20) {
    assert.ok(!caught.message.includes(token), 'the error must not contain the token');
  }
  return caught;
}

describe('verifyGrant', () => {
  it('accepts a grant the broker signed for this connection', async () => {
    const g = await verifyGrant(jwt(claims()), options);
    assert.deepEqual(g, {
      id: 'g1',
      userId: 'u1',
      name: 'alice',
      connection: 'db',
      actions: ['connect'],
      expiresAt: NOW + 600_000,
    });
  });

  it('refuses a missing grant (fail closed)', async () => {
    await refused(undefined, 'GRANT_INVALID');
    await refused('', 'GRANT_INVALID');
  });

  it('refuses a forged signature', async () => {
    await refused(jwt(claims(), other.privateKey), 'GRANT_INVALID');
    const [h, p] = jwt(claims()).split('.');
    const tampered = `${h}.${b64(claims({ conn: 'db', act: ['connect', 'admin'] }))}.${jwt(claims()).split('.')[2]}`;
    assert.notEqual(p, tampered.split('.')[1]);
    await refused(tampered, 'GRANT_INVALID');
  });

  it('refuses alg none and HS256 signed with the public key', async () => {
    const none = `${b64({ alg: 'none', kid: 'k1', typ: 'hoop-grant+jwt' })}.${b64(claims())}.`;
    await refused(none, 'GRANT_INVALID');
    const header = b64({ alg: 'HS256', kid: 'k1', typ: 'hoop-grant+jwt' });
    const input = `${header}.${b64(claims())}`;
    const pub = good.publicKey.export({ format: 'jwk' });
    const mac = createHmac('sha256', JSON.stringify(pub)).update(input).digest('base64url');
    await refused(`${input}.${mac}`, 'GRANT_INVALID');
    const pem = good.publicKey.export({ format: 'pem', type: 'spki' });
    const mac2 = createHmac('sha256', pem).update(input).digest('base64url');
    await refused(`${input}.${mac2}`, 'GRANT_INVALID');
  });

  it('refuses another issuer, audience or token type', async () => {
    await refused(jwt(claims({ iss: 'evil' })), 'GRANT_INVALID');
    await refused(jwt(claims({ aud: 'other' })), 'GRANT_INVALID');
    await refused(
      jwt(claims(), good.privateKey, { alg: 'EdDSA', kid: 'k1', typ: 'JWT' }),
      'GRANT_INVALID',
    );
    await refused(
      jwt(claims(), good.privateKey, {
        alg: 'EdDSA',
        kid: 'k1',
        typ: 'hoop-grant+jwt',
        crit: ['x'],
      }),
      'GRANT_INVALID',
    );
  });

  it('refuses an unknown kid', async () => {
    await refused(
      jwt(claims(), good.privateKey, { alg: 'EdDSA', kid: 'k9', typ: 'hoop-grant+jwt' }),
      'GRANT_INVALID',
    );
  });

  it('refuses an expired grant with a message that says what to do', async () => {
    const err = await refused(jwt(claims({ exp: NOW / 1000 })), 'GRANT_EXPIRED');
    assert.match(err.message, /hoop grants request db/);
  });

  it('refuses a grant for another connection', async () => {
    await refused(jwt(claims({ conn: 'prod' })), 'GRANT_WRONG_CONNECTION');
  });

  it('refuses a grant without connect, one issued in the future, and bad claim shapes', async () => {
    await refused(jwt(claims({ act: ['exec'] })), 'GRANT_INVALID');
    await refused(jwt(claims({ iat: NOW / 1000 + 3600 })), 'GRANT_INVALID');
    await refused(jwt(claims({ act: 'connect' })), 'GRANT_INVALID');
    await refused(jwt(claims({ exp: '9999999999' })), 'GRANT_INVALID');
  });

  it('refuses oversized and garbage tokens', async () => {
    await refused(`eyJ${'a'.repeat(9000)}.a.b`, 'GRANT_INVALID');
    for (const garbage of [
      'x',
      'a.b',
      'a.b.c.d',
      '!!!.###.$$$',
      'eyJ.eyJ.',
      `${b64([1])}.${b64({})}.AA`,
    ]) {
      await refused(garbage, 'GRANT_INVALID');
    }
  });
});

describe('JwksCache', () => {
  const jwk = (kid: string, key: KeyObject) => ({
    ...(key.export({ format: 'jwk' }) as object),
    kid,
    alg: 'EdDSA',
    use: 'sig',
  });

  it('derives the JWKS URL from the broker URL', () => {
    assert.equal(jwksUrl('http://b:8009'), 'http://b:8009/.well-known/jwks.json');
    assert.equal(jwksUrl('https://b/hoop/'), 'https://b/hoop/.well-known/jwks.json');
  });

  it('caches by kid, refetches on an unknown kid, and bounds refetches', async () => {
    const clock = new FakeClock(NOW);
    let fetches = 0;
    let keys: unknown[] = [jwk('k1', good.publicKey)];
    const cache = new JwksCache({
      url: 'http://broker/.well-known/jwks.json',
      clock,
      logger: silentLogger,
      minRefetchMs: 1000,
      fetch: (async () => {
        fetches++;
        return new Response(JSON.stringify({ keys }), { status: 200 });
      }) as typeof fetch,
    });
    assert.ok(await cache.key('k1'));
    assert.ok(await cache.key('k1'));
    assert.equal(fetches, 1);
    // Rotation: a new kid appears after the allowed interval.
    keys = [
      jwk('k1', good.publicKey),
      jwk('k2', other.publicKey),
      { kty: 'oct', k: 'x', kid: 'k3' },
    ];
    clock.advance(1000);
    assert.ok(await cache.key('k2'));
    assert.equal(fetches, 2);
    // Non-Ed25519 entries are never trusted.
    clock.advance(1000);
    assert.equal(await cache.key('k3'), undefined);
    assert.equal(fetches, 3);
    // Inside the interval a lookup waits for the next allowed fetch instead of hammering.
    const pending = cache.key('k4');
    const again = cache.key('k5');
    await new Promise((r) => setImmediate(r));
    assert.equal(fetches, 3);
    clock.advance(1000);
    assert.equal(await pending, undefined);
    assert.equal(await again, undefined);
    assert.equal(fetches, 4);
  });

  it('keeps its keys when the broker is unreachable', async () => {
    const clock = new FakeClock(NOW);
    let up = true;
    const cache = new JwksCache({
      url: 'http://broker/.well-known/jwks.json',
      clock,
      logger: silentLogger,
      minRefetchMs: 0,
      fetch: (async () => {
        if (!up) throw new Error('ECONNREFUSED');
        return new Response(JSON.stringify({ keys: [jwk('k1', good.publicKey)] }));
      }) as typeof fetch,
    });
    assert.ok(await cache.key('k1'));
    up = false;
    assert.equal(await cache.key('k2'), undefined);
    assert.ok(await cache.key('k1'));
  });
});

/** The test options, counting the key lookups (one per signature checked). */
function countingKeys(): { counting: typeof options; lookups: () => number } {
  let count = 0;
  const counting = {
    ...options,
    key: async (kid: string) => {
      count++;
      return options.key(kid);
    },
  };
  return { counting, lookups: () => count };
}

describe('VerifiedGrants', () => {
  it('checks a grant seen before without its signature, but always its expiry and connection', async () => {
    const { counting, lookups } = countingKeys();
    const verified = new VerifiedGrants();
    const token = jwt(claims());
    const first = await verified.verify(token, counting);
    const again = await verified.verify(token, counting);
    assert.deepEqual(again, first);
    assert.equal(lookups(), 1, 'the signature was checked once');
    // Still refused for another connection, and once expired (then forgotten).
    await assert.rejects(verified.verify(token, { ...counting, connection: 'other' }), {
      code: 'GRANT_WRONG_CONNECTION',
    });
    await assert.rejects(verified.verify(token, { ...counting, now: NOW + 600_000 }), {
      code: 'GRANT_EXPIRED',
    });
    assert.equal(verified.size, 0);
    // A token that failed is never remembered: a forged one fails every time.
    const forged = jwt(claims(), other.privateKey);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(verified.verify(forged, counting), { code: 'GRANT_INVALID' });
    }
    assert.equal(verified.size, 0);
  });

  it('keeps at most its bound, the oldest dropped first', async () => {
    const verified = new VerifiedGrants(3);
    const tokens = [1, 2, 3, 4, 5].map((n) => jwt(claims({ jti: `g${n}` })));
    for (const token of tokens) await verified.verify(token, options);
    assert.equal(verified.size, 3);
    const { counting, lookups } = countingKeys();
    await verified.verify(tokens[4], counting);
    assert.equal(lookups(), 0, 'the newest is kept');
    await verified.verify(tokens[0], counting);
    assert.equal(lookups(), 1, 'the oldest was dropped');
  });
});
