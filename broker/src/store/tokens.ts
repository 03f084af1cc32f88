/**
 * Bearer tokens: agent tokens (`hoop_at_…`) and personal access tokens (`hoop_pat_…`). A token is
 * 32 random bytes, so a single sha256 is enough to store it (no password KDF needed: there is
 * nothing to brute-force); only the hex digest is ever persisted.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const tokenPrefixes = ['hoop_at', 'hoop_pat'] as const;
export type TokenPrefix = (typeof tokenPrefixes)[number];

/** Random bytes in a generated token. */
export const TOKEN_BYTES = 32;

/** `<prefix>_<32 random bytes, base64url>`, e.g. `hoop_pat_3q2-…`. */
export function generateToken(prefix: TokenPrefix): string {
  return `${prefix}_${randomBytes(TOKEN_BYTES).toString('base64url')}`;
}

/** sha256 of the token's UTF-8 bytes, lowercase hex: the only form the store keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two strings in time independent of where they differ (lengths are not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

/** Which kind of token this looks like, from its prefix; undefined for anything else. */
export function tokenPrefixOf(token: string): TokenPrefix | undefined {
  if (token.startsWith('hoop_pat_')) return 'hoop_pat';
  if (token.startsWith('hoop_at_')) return 'hoop_at';
  return undefined;
}
