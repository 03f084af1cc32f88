/** Short-lived grants: signing keys (JWKS), mint, verify, revoke. */
export {
  DEFAULT_GRANT_CAP_SECONDS,
  DEFAULT_GRANT_TTL_SECONDS,
  defaultGrantLimits,
  GRANT_ALGORITHM,
  GRANT_AUDIENCE,
  GRANT_ISSUER,
  GRANT_TTL_CEILING_SECONDS,
  GRANT_TYPE,
  type GrantClaims,
  type GrantLimits,
  type GrantVia,
  grantCapSeconds,
  grantTimes,
  MAX_GRANT_BYTES,
  parseTtl,
} from './claims.js';
export { KeyRing, type KeyRingOptions, type PublishedJwk } from './keys.js';
export {
  GrantService,
  type GrantServiceOptions,
  looksLikeJwt,
  type MintedGrant,
  type MintRequest,
} from './service.js';
