import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateKeyPair, jwtVerify } from 'jose';
import { signEdDsaJwt } from './jws.js';

describe('signEdDsaJwt', () => {
  const header = { alg: 'EdDSA', kid: 'k1', typ: 'hoop-grant+jwt' } as const;
  const claims = {
    sub: 'u1',
    jti: 'g1',
    iss: 'hoop-broker',
    aud: 'hoop',
    conn: 'db',
    iat: 1,
    exp: 4_000_000_000,
  };

  it('makes a compact JWS that jose verifies, header and claims intact', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', {
      crv: 'Ed25519',
      extractable: true,
    });
    const token = signEdDsaJwt(header, claims, privateKey);
    const { payload, protectedHeader } = await jwtVerify(token, publicKey, {
      algorithms: ['EdDSA'],
      issuer: 'hoop-broker',
      audience: 'hoop',
      typ: 'hoop-grant+jwt',
    });
    assert.deepEqual(protectedHeader, header);
    assert.deepEqual(payload, claims);
  });

  it('signs with a node KeyObject too, and a changed byte fails verification', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const token = signEdDsaJwt(header, claims, privateKey);
    await jwtVerify(token, publicKey);
    const [h, p, s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${s}`;
    assert.notEqual(p, forged.split('.')[1]);
    await assert.rejects(jwtVerify(forged, publicKey), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('refuses a key that is not an Ed25519 private key', async () => {
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    assert.throws(() => signEdDsaJwt(header, claims, publicKey), { code: 'INTERNAL' });
    assert.throws(() => signEdDsaJwt(header, claims, new Uint8Array(32)), { code: 'INTERNAL' });
  });
});
