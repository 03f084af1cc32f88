/** The agent's own verification of session grants against the broker's JWKS. */
export { JwksCache, type JwksCacheOptions, jwksUrl } from './jwks.js';
export {
  GRANT_ALGORITHM,
  GRANT_AUDIENCE,
  GRANT_ISSUER,
  GRANT_TYPE,
  MAX_GRANT_BYTES,
  type VerifiedGrant,
  type VerifyGrantOptions,
  verifyGrant,
} from './verify.js';
