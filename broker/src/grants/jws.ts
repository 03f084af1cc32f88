/**
 * Signing a grant: a compact JWS (RFC 7515 §7.1) with EdDSA over Ed25519 (RFC 8037), done with
 * node:crypto in the caller's turn of the event loop.
 *
 *   BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(Ed25519(signing input))
 *
 * jose's SignJWT goes through WebCrypto, which runs every signature as a thread-pool job: about
 * 0.1 ms on an idle broker, but a session open then waits for the event loop to come back to the
 * job's completion — measured at 1.1 ms on average under `pgbench -C`. An Ed25519 signature
 * itself takes ~25 µs. Verification stays with jose (jwtVerify), which checks the token this
 * produces like any other.
 */
import { KeyObject, sign, type webcrypto } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import type { JWTPayload } from 'jose';

export interface GrantJwsHeader {
  readonly alg: 'EdDSA';
  readonly kid: string;
  readonly typ: string;
}

/** KeyObjects of the CryptoKeys jose imported (one per signing key). */
const keyObjects = new WeakMap<webcrypto.CryptoKey, KeyObject>();

/** Signs `payload` with an Ed25519 private key (as jose's importJWK returns it). */
export function signEdDsaJwt(
  header: GrantJwsHeader,
  payload: JWTPayload,
  key: webcrypto.CryptoKey | KeyObject | Uint8Array,
): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = sign(null, Buffer.from(input, 'ascii'), keyObject(key));
  return `${input}.${signature.toString('base64url')}`;
}

function keyObject(key: webcrypto.CryptoKey | KeyObject | Uint8Array): KeyObject {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array || key.type !== 'private' || key.algorithm.name !== 'Ed25519') {
    throw new HoopError('INTERNAL', 'the grant signing key is not an Ed25519 private key');
  }
  let object = keyObjects.get(key);
  if (object === undefined) {
    object = KeyObject.from(key);
    keyObjects.set(key, object);
  }
  return object;
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
