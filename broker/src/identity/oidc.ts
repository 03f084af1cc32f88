/**
 * People through an OpenID provider: authorization code + PKCE with a loopback redirect (the CLI's
 * `http://127.0.0.1:<port>/callback`). The broker keeps the client secret and the login state:
 *
 *   start(redirectUri)  → state, nonce, PKCE verifier saved (oidc_logins, 10 min) → authorization URL
 *   callback(code, state) → state consumed once → code exchanged (secret + verifier)
 *                         → ID token verified (JWKS; iss, aud, exp, nonce) → groups from the claim
 *                         → person upserted (issuer + subject) → expiring hoop user token
 */
import { createHash, randomBytes } from 'node:crypto';
import { HoopError, type Logger } from '@hoop/shared';
import { eq, lt } from 'drizzle-orm';
import { type JWTPayload, jwtVerify } from 'jose';
import type { AuditRecorder } from '../audit/record.js';
import { nowOf, type StoreContext } from '../store/context.js';
import { oidcLogins } from '../store/schema.js';
import { createUserToken, type IdentityInfo, upsertOidcIdentity } from '../store/users.js';
import { ASYMMETRIC_ALGORITHMS, type ProviderDirectory, readJsonLimited } from './discovery.js';

export interface OidcConfig {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Claim holding the user's groups (ID token, else userinfo); default `groups`. */
  readonly groupsClaim: string;
}

/** Name of the api_tokens rows issued by an OIDC login (so the caller reads `via: 'oidc'`). */
export const OIDC_TOKEN_NAME = 'oidc-login';

const LOGIN_TTL_MS = 10 * 60_000;
const TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 256 * 1024;

const failed = (message: string) => new HoopError('OIDC_FAILED', message);

function random(): string {
  return randomBytes(32).toString('base64url');
}

/** Only loopback redirects: the code goes to the CLI on this machine, nowhere else. */
export function validateRedirectUri(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new HoopError('INVALID_REQUEST', 'redirectUri must be a URL');
  }
  const loopback =
    url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'http:' || !loopback || url.search !== '' || url.hash !== '') {
    throw new HoopError(
      'INVALID_REQUEST',
      'redirectUri must be a loopback http URL such as http://127.0.0.1:PORT/callback',
    );
  }
  return String(value);
}

export interface OidcLoginResult {
  readonly token: string;
  readonly expiresAt: number;
  readonly user: IdentityInfo;
}

export interface OidcLoginOptions {
  readonly ctx: StoreContext;
  readonly config: OidcConfig;
  readonly providers: ProviderDirectory;
  readonly audit: AuditRecorder;
  readonly logger: Logger;
  /** Lifetime of the hoop token a login returns. */
  readonly tokenTtlMs: number;
}

export class OidcLogin {
  constructor(private readonly options: OidcLoginOptions) {}

  get issuer(): string {
    return this.options.config.issuer;
  }

  async start(redirectUri: unknown): Promise<{ authorizationUrl: string; state: string }> {
    const redirect = validateRedirectUri(redirectUri);
    const { ctx, config, providers } = this.options;
    let metadata: Awaited<ReturnType<ProviderDirectory['discover']>>;
    try {
      metadata = await providers.discover(config.issuer);
    } catch (err) {
      throw failed(`cannot reach the identity provider: ${(err as Error).message}`);
    }
    if (metadata.authorization_endpoint === undefined) {
      throw failed('the identity provider has no authorization endpoint');
    }
    const state = random();
    const nonce = random();
    const codeVerifier = random();
    const now = nowOf(ctx);
    // logins never completed expire; forget them as new ones start
    await ctx.db.delete(oidcLogins).where(lt(oidcLogins.expiresAt, now));
    await ctx.db.insert(oidcLogins).values({
      state,
      nonce,
      codeVerifier,
      redirectUri: redirect,
      createdAt: now,
      expiresAt: new Date(now.getTime() + LOGIN_TTL_MS),
    });
    const scopes = ['openid', 'profile', 'email'];
    if (metadata.scopes_supported?.includes(config.groupsClaim)) scopes.push(config.groupsClaim);
    const url = new URL(metadata.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', config.clientId);
    url.searchParams.set('redirect_uri', redirect);
    url.searchParams.set('scope', scopes.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    url.searchParams.set(
      'code_challenge',
      createHash('sha256').update(codeVerifier).digest('base64url'),
    );
    url.searchParams.set('code_challenge_method', 'S256');
    return { authorizationUrl: url.toString(), state };
  }

  async callback(code: unknown, state: unknown): Promise<OidcLoginResult> {
    try {
      return await this.complete(code, state);
    } catch (err) {
      const error = err instanceof HoopError ? err : failed('the login did not complete');
      await this.options.audit({
        type: 'login-failed',
        detail: { via: 'oidc', issuer: this.issuer, code: error.code, reason: error.message },
      });
      throw error;
    }
  }

  private async complete(code: unknown, state: unknown): Promise<OidcLoginResult> {
    const { ctx, config, providers } = this.options;
    if (typeof code !== 'string' || code.length === 0 || code.length > 2048) {
      throw failed('the callback carried no authorization code');
    }
    if (typeof state !== 'string' || state.length === 0 || state.length > 256) {
      throw failed('the callback carried no state');
    }
    // consumed once, whatever happens next
    const [login] = await ctx.db.delete(oidcLogins).where(eq(oidcLogins.state, state)).returning();
    if (login === undefined || login.expiresAt.getTime() <= ctx.clock.now()) {
      throw failed('this login is unknown or expired; run `hoop login` again');
    }
    const metadata = await providers.discover(config.issuer).catch(() => {
      throw failed('cannot reach the identity provider');
    });
    if (metadata.token_endpoint === undefined) throw failed('the provider has no token endpoint');
    const tokens = await this.exchangeCode(metadata.token_endpoint, code, login);
    const keys = await providers.keys(config.issuer);
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(tokens.idToken, keys, {
        issuer: config.issuer,
        audience: config.clientId,
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: 30,
        currentDate: new Date(ctx.clock.now()),
      }));
    } catch {
      throw failed('the identity provider returned an ID token that failed verification');
    }
    if (claims['nonce'] !== login.nonce) throw failed('the ID token nonce does not match');
    if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims['azp'] !== config.clientId) {
      throw failed('the ID token was issued to another client');
    }
    const subject = claims.sub as string;
    let groupsValue = claims[config.groupsClaim];
    let profile: Record<string, unknown> = claims;
    if (groupsValue === undefined && metadata.userinfo_endpoint && tokens.accessToken) {
      const info = await this.userinfo(metadata.userinfo_endpoint, tokens.accessToken);
      if (info['sub'] === subject) {
        groupsValue = info[config.groupsClaim];
        profile = { ...info, ...claims };
      }
    }
    const groups = Array.isArray(groupsValue)
      ? groupsValue.filter((g): g is string => typeof g === 'string')
      : typeof groupsValue === 'string'
        ? [groupsValue]
        : [];
    const preferred = [profile['preferred_username'], profile['email'], profile['name']].find(
      (v): v is string => typeof v === 'string' && v.length > 0,
    );
    const user = await upsertOidcIdentity(ctx, {
      issuer: config.issuer,
      subject,
      preferredName: preferred?.split('@')[0],
      groups,
    });
    if (user.disabled) throw failed(`user ${user.name} is disabled`);
    const expiresAt = ctx.clock.now() + this.options.tokenTtlMs;
    const token = await createUserToken(ctx, user.id, OIDC_TOKEN_NAME, { expiresAt });
    await this.options.audit({
      type: 'login',
      actor: user.name,
      subject: user.name,
      detail: { via: 'oidc', issuer: config.issuer, groups: user.groups },
    });
    return { token, expiresAt, user };
  }

  private async exchangeCode(
    endpoint: string,
    code: string,
    login: { codeVerifier: string; redirectUri: string },
  ): Promise<{ idToken: string; accessToken: string | undefined }> {
    const { config } = this.options;
    const basic = Buffer.from(
      `${encodeURIComponent(config.clientId)}:${encodeURIComponent(config.clientSecret)}`,
    ).toString('base64');
    let body: Record<string, unknown>;
    try {
      const response = await fetch(endpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: login.redirectUri,
          code_verifier: login.codeVerifier,
        }),
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      body = ((await readJsonLimited(response, MAX_RESPONSE_BYTES)) ?? {}) as Record<
        string,
        unknown
      >;
      if (!response.ok) {
        const reason =
          typeof body['error'] === 'string' ? body['error'].slice(0, 64) : response.status;
        throw new Error(`the token endpoint answered ${reason}`);
      }
    } catch (err) {
      throw failed(`the authorization code was not accepted (${(err as Error).message})`);
    }
    if (typeof body['id_token'] !== 'string') throw failed('the provider returned no ID token');
    return {
      idToken: body['id_token'],
      accessToken: typeof body['access_token'] === 'string' ? body['access_token'] : undefined,
    };
  }

  private async userinfo(endpoint: string, accessToken: string): Promise<Record<string, unknown>> {
    try {
      const response = await fetch(endpoint, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) return {};
      const value = await readJsonLimited(response, MAX_RESPONSE_BYTES);
      return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
}
