/**
 * The broker's identity service: one place that turns a bearer into a Caller, whatever it is —
 *
 *   hoop_pat_… / hoop_sak_… / HOOP_ADMIN_TOKEN → api_tokens (user token, OIDC login, API key)
 *   a JWT whose iss is the grant issuer        → the grant resolver (grants module), when set
 *   any other JWT                              → CI exchange under a trust policy
 *
 * — plus the authorizer, local password login and the OIDC login flow.
 */
import { HoopError, type Logger } from '@hoop/shared';
import type { AuditRecorder } from '../audit/record.js';
import type { StoreContext } from '../store/context.js';
import { authenticateBearer, createUserToken, passwordLoginCandidate } from '../store/users.js';
import { createAccessAuthorizer } from './authorizer.js';
import type { Authorizer, Caller } from './caller.js';
import { CiExchange, looksLikeJwt, unverifiedIssuer } from './ci.js';
import { ProviderDirectory } from './discovery.js';
import { OIDC_TOKEN_NAME, type OidcConfig, OidcLogin } from './oidc.js';
import { verifyPassword } from './password.js';

/** api_tokens name of the tokens a password login returns. */
export const PASSWORD_TOKEN_NAME = 'password-login';

export interface IdentityOptions {
  readonly ctx: StoreContext;
  readonly audit: AuditRecorder;
  readonly logger: Logger;
  /** People via an OpenID provider; off when undefined. */
  readonly oidc?: OidcConfig | undefined;
  /** Lifetime of the tokens `login` and the OIDC flow return; default 12 h. */
  readonly loginTokenTtlMs?: number;
  /** Timeout of each request to an issuer (discovery, JWKS); default 5 s. */
  readonly issuerTimeoutMs?: number;
}

export type GrantResolver = (token: string) => Promise<Caller>;

const invalidToken = () =>
  new HoopError('AUTH_INVALID_TOKEN', 'the token is unknown, expired or revoked');

export class IdentityService {
  readonly authorize: Authorizer;
  readonly ci: CiExchange;
  readonly oidc: OidcLogin | undefined;
  private readonly providers: ProviderDirectory;
  private readonly loginTokenTtlMs: number;
  private grants: { issuer: string; resolve: GrantResolver } | undefined;

  constructor(private readonly options: IdentityOptions) {
    const { ctx } = options;
    this.loginTokenTtlMs = options.loginTokenTtlMs ?? 12 * 3600_000;
    this.providers = new ProviderDirectory({
      now: () => ctx.clock.now(),
      ...(options.issuerTimeoutMs === undefined ? {} : { timeoutMs: options.issuerTimeoutMs }),
    });
    this.authorize = createAccessAuthorizer(ctx);
    this.ci = new CiExchange({
      ctx,
      providers: this.providers,
      audit: options.audit,
      logger: options.logger,
    });
    this.oidc =
      options.oidc === undefined
        ? undefined
        : new OidcLogin({
            ctx,
            config: options.oidc,
            providers: this.providers,
            audit: options.audit,
            logger: options.logger,
            tokenTtlMs: this.loginTokenTtlMs,
          });
  }

  /** JWTs with this `iss` are grants: the grants module resolves them (never the CI exchange). */
  setGrantResolver(issuer: string, resolve: GrantResolver): void {
    this.grants = { issuer, resolve };
  }

  /** The caller a bearer token proves, or a HoopError (401 AUTH_INVALID_TOKEN, 403 TRUST_NO_MATCH, …). */
  async resolve(token: string): Promise<Caller> {
    if (looksLikeJwt(token)) {
      const issuer = unverifiedIssuer(token);
      if (this.grants !== undefined && issuer === this.grants.issuer) {
        return this.grants.resolve(token);
      }
      if (this.oidc !== undefined && issuer === this.oidc.issuer) {
        throw new HoopError(
          'AUTH_INVALID_TOKEN',
          'an ID token is not a hoop token: run `hoop login` to exchange it',
        );
      }
      return this.ci.exchange(token);
    }
    const found = await authenticateBearer(this.options.ctx, token);
    if (found === undefined) throw invalidToken();
    return {
      userId: found.userId,
      name: found.name,
      role: found.role,
      kind: found.kind,
      groups: found.groups,
      via:
        found.kind === 'service'
          ? 'apikey'
          : found.tokenName === OIDC_TOKEN_NAME
            ? 'oidc'
            : 'token',
    };
  }

  /**
   * A local user's password login: an expiring user token. Any failure (no such user, wrong
   * password, disabled, not a local user) is the same 401 and takes the same time.
   */
  async login(
    name: unknown,
    password: unknown,
  ): Promise<{ token: string; expiresAt: number; user: string; role: string }> {
    const { ctx, audit } = this.options;
    const userName = typeof name === 'string' ? name.slice(0, 255) : '';
    const candidate = await passwordLoginCandidate(ctx, userName);
    const ok = await verifyPassword(
      typeof password === 'string' ? password.slice(0, 4096) : '',
      candidate?.passwordHash,
    );
    if (!ok || candidate === undefined || candidate.identity.disabled) {
      await audit({
        type: 'login-failed',
        subject: userName,
        detail: {
          via: 'password',
          reason: !ok || candidate === undefined ? 'credentials' : 'disabled',
        },
      });
      throw new HoopError('AUTH_INVALID_TOKEN', 'wrong user name or password', {
        hint: 'Check the user name and password, or ask your admin whether the user is enabled.',
      });
    }
    const expiresAt = ctx.clock.now() + this.loginTokenTtlMs;
    const token = await createUserToken(ctx, candidate.identity.id, PASSWORD_TOKEN_NAME, {
      expiresAt,
    });
    await audit({
      type: 'login',
      actor: candidate.identity.name,
      subject: candidate.identity.name,
      detail: { via: 'password' },
    });
    return { token, expiresAt, user: candidate.identity.name, role: candidate.identity.role };
  }
}
