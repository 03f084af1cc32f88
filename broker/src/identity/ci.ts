/**
 * CI identity exchange: a job presents its CI system's OIDC JWT as the bearer. When an admin's
 * trust policy names that issuer, the token is verified against the issuer's JWKS (asymmetric
 * algorithms only; exp/nbf; audience, subject glob and claim globs per policy) and the caller
 * becomes the policy's service account. Nothing is stored for the job: no secret, no key.
 *
 *   job JWT ─► header alg asymmetric? ─► iss has policies? ─► signature + exp/nbf (JWKS)
 *           ─► some policy matches aud, sub, claims? ─► Caller (service account, via 'ci')
 */
import { HoopError, type Logger } from '@hoop/shared';
import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { AuditRecorder } from '../audit/record.js';
import type { StoreContext } from '../store/context.js';
import { type TrustPolicyInfo, trustPoliciesForIssuer } from '../store/trust.js';
import { getIdentityById } from '../store/users.js';
import type { Caller } from './caller.js';
import { ASYMMETRIC_ALGORITHMS, type ProviderDirectory } from './discovery.js';
import { globMatch } from './glob.js';

/** Seconds of clock skew tolerated on exp/nbf. */
const CLOCK_TOLERANCE_S = 30;

const invalid = (message: string) => new HoopError('AUTH_INVALID_TOKEN', message);

/** Whether this looks like a compact JWS (three base64url parts, a JSON header with `alg`). */
export function looksLikeJwt(token: string): boolean {
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) return false;
  try {
    return typeof decodeProtectedHeader(token).alg === 'string';
  } catch {
    return false;
  }
}

/** The unverified `iss` of a JWT, to route it (never to trust it). */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

function claimMatches(pattern: string, value: unknown): boolean {
  if (typeof value === 'string') return globMatch(pattern, value);
  if (typeof value === 'number' || typeof value === 'boolean')
    return globMatch(pattern, String(value));
  return false;
}

/** Whether a verified payload satisfies the policy: audience, subject pattern, every claim. */
export function policyMatches(policy: TrustPolicyInfo, payload: JWTPayload): boolean {
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!audiences.includes(policy.audience)) return false;
  if (typeof payload.sub !== 'string' || !globMatch(policy.subjectPattern, payload.sub))
    return false;
  return Object.entries(policy.claims).every(([claim, pattern]) =>
    claimMatches(pattern, (payload as Record<string, unknown>)[claim]),
  );
}

export interface CiExchangeOptions {
  readonly ctx: StoreContext;
  readonly providers: ProviderDirectory;
  readonly audit: AuditRecorder;
  readonly logger: Logger;
}

export class CiExchange {
  constructor(private readonly options: CiExchangeOptions) {}

  /** The service account a CI token acts as; AUTH_INVALID_TOKEN (401) or TRUST_NO_MATCH (403). */
  async exchange(token: string): Promise<Caller> {
    const { ctx, audit } = this.options;
    let header: { alg?: unknown };
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      throw invalid('the token is not a well-formed JWT');
    }
    if (!(ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(header.alg)) {
      await this.failed('alg', undefined);
      throw invalid('the token is not signed with an accepted asymmetric algorithm');
    }
    const issuer = typeof claims.iss === 'string' ? claims.iss : undefined;
    const policies = issuer === undefined ? [] : await trustPoliciesForIssuer(ctx, issuer);
    if (issuer === undefined || policies.length === 0) {
      await this.failed('issuer', undefined);
      throw invalid('the token is not a hoop token and no trust policy names its issuer');
    }
    let payload: JWTPayload;
    try {
      const keys = await this.options.providers.keys(issuer);
      ({ payload } = await jwtVerify(token, keys, {
        issuer,
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(ctx.clock.now()),
      }));
    } catch (err) {
      const reason = verificationFailure(err);
      await this.failed(reason, issuer);
      throw invalid(
        reason === 'expired'
          ? 'the CI token expired'
          : reason === 'jwks'
            ? `cannot verify the CI token: the keys of ${issuer} are unavailable`
            : 'the CI token failed verification (signature, times or claims)',
      );
    }
    const policy = policies.find((p) => policyMatches(p, payload));
    if (policy === undefined) {
      await this.failed('no-match', issuer);
      throw new HoopError(
        'TRUST_NO_MATCH',
        `no trust policy for ${issuer} matches this token's audience, subject and claims`,
      );
    }
    const account = await getIdentityById(ctx, policy.serviceAccountId);
    if (account === undefined || account.disabled || account.kind !== 'service') {
      await this.failed('disabled', issuer);
      throw invalid(`the service account of trust policy ${policy.name} is disabled`);
    }
    await audit({
      type: 'login',
      actor: account.name,
      subject: account.name,
      detail: { via: 'ci', policy: policy.name, issuer, ciSubject: payload.sub },
    });
    return {
      userId: account.id,
      name: account.name,
      role: account.role,
      kind: 'service',
      groups: account.groups,
      via: 'ci',
    };
  }

  private async failed(reason: string, issuer: string | undefined): Promise<void> {
    await this.options.audit({
      type: 'login-failed',
      detail: { via: 'ci', reason, ...(issuer === undefined ? {} : { issuer }) },
    });
  }
}

function verificationFailure(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim:${err.claim}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown-key';
  if (err instanceof errors.JWKSTimeout || err instanceof HoopError) return 'jwks';
  if (err instanceof errors.JOSEError) return err.code;
  return 'jwks';
}
