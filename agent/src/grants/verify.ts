/**
 * The agent's own check of the grant a session runs on (RFC 7515 compact JWS, RFC 7519 claims).
 * Deliberately narrow: one algorithm (EdDSA over Ed25519, what the broker signs with), one token
 * type, the broker's keys only (by kid, from its JWKS). Anything else — `alg: none`, HS256 made
 * with a public key, another issuer or audience, an expired grant, a grant for another
 * connection — is refused with a stable code. Errors never contain the token.
 */
import { type KeyObject, verify as verifySignature } from 'node:crypto';
import { HoopError } from '@hoop/shared';

export const GRANT_ISSUER = 'hoop-broker';
export const GRANT_AUDIENCE = 'hoop';
export const GRANT_TYPE = 'hoop-grant+jwt';
export const GRANT_ALGORITHM = 'EdDSA';
export const MAX_GRANT_BYTES = 8 * 1024;

/** Allowed clock difference between broker and agent for `iat` (not for `exp`). */
const IAT_SKEW_MS = 60_000;
const PART = /^[A-Za-z0-9_-]+$/;

export interface VerifiedGrant {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly connection: string;
  readonly actions: readonly string[];
  /** epoch ms */
  readonly expiresAt: number;
}

export interface VerifyGrantOptions {
  /** The broker's public key for a kid, or undefined when it has none. */
  readonly key: (kid: string) => Promise<KeyObject | undefined>;
  /** epoch ms */
  readonly now: number;
  /** The connection the session is for (`target.name`). */
  readonly connection: string;
  readonly issuer?: string;
  readonly audience?: string;
}

function invalid(why: string): HoopError {
  return new HoopError('GRANT_INVALID', `the session's grant is not valid: ${why}`);
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw invalid(`its ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`its ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

export async function verifyGrant(
  token: unknown,
  options: VerifyGrantOptions,
): Promise<VerifiedGrant> {
  if (typeof token !== 'string' || token.length === 0) {
    throw new HoopError('GRANT_INVALID', 'the session has no grant; the agent refuses it');
  }
  if (token.length > MAX_GRANT_BYTES) throw invalid(`it is longer than ${MAX_GRANT_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => PART.test(p))) throw invalid('it is malformed');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJson(headerPart, 'header');
  if (header['alg'] !== GRANT_ALGORITHM) throw invalid('it is not signed with a grant key');
  if (header['typ'] !== GRANT_TYPE) throw invalid('it is not a grant');
  if (header['crit'] !== undefined) throw invalid('it has critical header parameters');
  const kid = header['kid'];
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
    throw invalid('it names no signing key');
  }
  const key = await options.key(kid);
  if (key === undefined) throw invalid('it is signed with a key the broker does not publish');
  if (key.asymmetricKeyType !== 'ed25519') throw invalid('it is not signed with a grant key');
  const signature = Buffer.from(signaturePart, 'base64url');
  if (signature.length !== 64) throw invalid('its signature does not verify');
  const signed = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  if (!verifySignature(null, signed, key, signature))
    throw invalid('its signature does not verify');

  const claims = decodeJson(payloadPart, 'payload');
  const issuer = options.issuer ?? GRANT_ISSUER;
  const audience = options.audience ?? GRANT_AUDIENCE;
  if (claims['iss'] !== issuer) throw invalid('its issuer is not this broker');
  const aud = claims['aud'];
  if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
    throw invalid('its audience is not hoop');
  }
  const { exp, iat, jti, sub, name, conn, act } = claims;
  if (
    typeof exp !== 'number' ||
    typeof iat !== 'number' ||
    typeof jti !== 'string' ||
    typeof sub !== 'string' ||
    typeof name !== 'string' ||
    typeof conn !== 'string' ||
    !Array.isArray(act) ||
    !act.every((a) => typeof a === 'string')
  ) {
    throw invalid('its claims are not a grant');
  }
  if (iat * 1000 > options.now + IAT_SKEW_MS) throw invalid('it was issued in the future');
  const grant: VerifiedGrant = {
    id: jti,
    userId: sub,
    name,
    connection: conn,
    actions: act as string[],
    expiresAt: exp * 1000,
  };
  assertGrantUsable(grant, options);
  return grant;
}

/**
 * What a verified grant must still be at each use: unexpired, for this connection, allowing
 * connect. Throws GRANT_EXPIRED, GRANT_WRONG_CONNECTION or GRANT_INVALID.
 */
export function assertGrantUsable(
  grant: VerifiedGrant,
  options: Pick<VerifyGrantOptions, 'now' | 'connection'>,
): void {
  const { connection: conn, expiresAt } = grant;
  if (expiresAt <= options.now) {
    throw new HoopError(
      'GRANT_EXPIRED',
      `the grant for ${conn} expired at ${new Date(expiresAt).toISOString()}; request a new one: hoop grants request ${conn}`,
    );
  }
  if (conn !== options.connection) {
    throw new HoopError(
      'GRANT_WRONG_CONNECTION',
      `the session's grant is for ${conn}, not ${options.connection}`,
    );
  }
  if (!grant.actions.includes('connect')) throw invalid('it does not allow connect');
}
