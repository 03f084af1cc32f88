/**
 * What a grant says and how long it lives. A grant is a JWT (RFC 7519) signed by the broker:
 *
 *   header  { alg: 'EdDSA', kid, typ: 'hoop-grant+jwt' }
 *   payload { iss: 'hoop-broker', aud: 'hoop', sub: <user id>, name: <user name>,
 *             conn: <connection>, act: ['connect', …], iat, exp, jti: <grant id>, reason? }
 *
 * Lifetime: the requested TTL (default 10 minutes), capped by the connection's
 * `max_grant_ttl_seconds` or else the broker's default cap (8 hours), and never above the hard
 * ceiling (24 hours), which is also how long a retired signing key stays in the JWKS.
 */
import { HoopError } from '@hoop/shared';

export const GRANT_ISSUER = 'hoop-broker';
export const GRANT_AUDIENCE = 'hoop';
export const GRANT_TYPE = 'hoop-grant+jwt';
export const GRANT_ALGORITHM = 'EdDSA';

/** Grants longer than this are refused before any parsing. */
export const MAX_GRANT_BYTES = 8 * 1024;

export const DEFAULT_GRANT_TTL_SECONDS = 10 * 60;
export const DEFAULT_GRANT_CAP_SECONDS = 8 * 60 * 60;
export const GRANT_TTL_CEILING_SECONDS = 24 * 60 * 60;
export const MAX_REASON_LENGTH = 500;

export type GrantVia = 'token' | 'apikey' | 'oidc' | 'ci' | 'session' | 'review';

/** The verified payload of a grant. */
export interface GrantClaims {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly connection: string;
  readonly actions: readonly string[];
  readonly reason: string | undefined;
  /** epoch ms */
  readonly issuedAt: number;
  /** epoch ms */
  readonly expiresAt: number;
}

export interface GrantLimits {
  readonly defaultTtlSeconds: number;
  readonly defaultCapSeconds: number;
  readonly ceilingSeconds: number;
}

export const defaultGrantLimits: GrantLimits = {
  defaultTtlSeconds: DEFAULT_GRANT_TTL_SECONDS,
  defaultCapSeconds: DEFAULT_GRANT_CAP_SECONDS,
  ceilingSeconds: GRANT_TTL_CEILING_SECONDS,
};

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a TTL as typed by a person or sent in JSON: seconds (number or digits), or a duration
 * such as `90s`, `10m`, `2h`, `1h30m`. Returns seconds; throws INVALID_REQUEST otherwise.
 */
export function parseTtl(value: unknown): number {
  let seconds: number | undefined;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string') {
    const text = value.trim().toLowerCase();
    if (/^\d{1,9}$/.test(text)) {
      seconds = Number(text);
    } else if (/^(?:\d{1,6}[smhd]){1,4}$/.test(text)) {
      seconds = 0;
      for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) {
        seconds += Number(n) * (UNIT_SECONDS[unit as string] as number);
      }
    }
  }
  if (seconds === undefined || !Number.isInteger(seconds) || seconds <= 0) {
    throw new HoopError(
      'INVALID_REQUEST',
      'ttl must be a positive number of seconds or a duration like 90s, 10m, 2h',
    );
  }
  return seconds;
}

/** The cap on a grant for a connection: its own cap, else the default, never above the ceiling. */
export function grantCapSeconds(
  limits: GrantLimits,
  connectionCapSeconds: number | null | undefined,
): number {
  const cap =
    connectionCapSeconds !== null && connectionCapSeconds !== undefined && connectionCapSeconds > 0
      ? connectionCapSeconds
      : limits.defaultCapSeconds;
  return Math.min(cap, limits.ceilingSeconds);
}

/**
 * When a grant minted at `nowMs` expires: `requestedSeconds` (default TTL when undefined), capped.
 * JWT times are whole seconds, so `iat` is the current second and `exp` = `iat` + lifetime.
 */
export function grantTimes(
  nowMs: number,
  requestedSeconds: number | undefined,
  capSeconds: number,
  limits: GrantLimits,
): { iat: number; exp: number; ttlSeconds: number; capped: boolean } {
  const wanted = requestedSeconds ?? Math.min(limits.defaultTtlSeconds, capSeconds);
  const ttlSeconds = Math.min(wanted, capSeconds);
  const iat = Math.floor(nowMs / 1000);
  return { iat, exp: iat + ttlSeconds, ttlSeconds, capped: ttlSeconds < wanted };
}
