/**
 * Talking to an OpenID provider: its discovery document (`<iss>/.well-known/openid-configuration`)
 * and its JWKS, both cached per issuer, fetched with bounded time and size. Only issuers that an
 * admin configured (trust policies, HOOP_OIDC_ISSUER) are ever fetched.
 */
import { HoopError } from '@hoop/shared';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';

/** Algorithms accepted on external tokens: asymmetric only (never `none`, never HS*). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export interface ProviderMetadata {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly authorization_endpoint?: string;
  readonly token_endpoint?: string;
  readonly userinfo_endpoint?: string;
  readonly scopes_supported?: readonly string[];
}

export interface DiscoveryOptions {
  /** Per request. */
  readonly timeoutMs?: number;
  /** How long a discovery document and a key set are trusted before fetching again. */
  readonly cacheMs?: number;
  /** Largest response body accepted. */
  readonly maxResponseBytes?: number;
  readonly now: () => number;
}

/** Reads a JSON response up to `limit` bytes (a larger one is an error, not a memory spike). */
export async function readJsonLimited(response: Response, limit: number): Promise<unknown> {
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > limit) throw new Error(`response larger than ${limit} bytes`);
  const reader = response.body?.getReader();
  if (reader === undefined) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`response larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export class ProviderDirectory {
  private readonly metadata = new Map<string, { at: number; value: Promise<ProviderMetadata> }>();
  private readonly keySets = new Map<string, { uri: string; keys: JWTVerifyGetKey }>();
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private readonly maxBytes: number;

  constructor(private readonly options: DiscoveryOptions) {
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.cacheMs = options.cacheMs ?? 10 * 60_000;
    this.maxBytes = options.maxResponseBytes ?? 256 * 1024;
  }

  /** The issuer's discovery document; its `issuer` must be exactly the one asked for. */
  discover(issuer: string): Promise<ProviderMetadata> {
    const now = this.options.now();
    const cached = this.metadata.get(issuer);
    if (cached !== undefined && now - cached.at < this.cacheMs) return cached.value;
    const value = this.fetchMetadata(issuer);
    this.metadata.set(issuer, { at: now, value });
    value.catch(() => {
      if (this.metadata.get(issuer)?.value === value) this.metadata.delete(issuer);
    });
    return value;
  }

  /** A key getter for `jwtVerify` over the issuer's JWKS (refetched on an unknown `kid`). */
  async keys(issuer: string): Promise<JWTVerifyGetKey> {
    const metadata = await this.discover(issuer);
    const cached = this.keySets.get(issuer);
    if (cached !== undefined && cached.uri === metadata.jwks_uri) return cached.keys;
    const keys = createRemoteJWKSet(new URL(metadata.jwks_uri), {
      timeoutDuration: this.timeoutMs,
      cooldownDuration: 30_000,
      cacheMaxAge: this.cacheMs,
    });
    this.keySets.set(issuer, { uri: metadata.jwks_uri, keys });
    return keys;
  }

  private async fetchMetadata(issuer: string): Promise<ProviderMetadata> {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let body: unknown;
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = await readJsonLimited(response, this.maxBytes);
    } catch (err) {
      throw new HoopError(
        'AUTH_INVALID_TOKEN',
        `cannot read the discovery document of ${issuer} (${(err as Error).message})`,
      );
    }
    const doc = body as Partial<ProviderMetadata> | undefined;
    if (doc?.issuer !== issuer || typeof doc.jwks_uri !== 'string') {
      throw new HoopError(
        'AUTH_INVALID_TOKEN',
        `the discovery document of ${issuer} does not name that issuer or has no jwks_uri`,
      );
    }
    const jwks = new URL(doc.jwks_uri);
    if (
      jwks.protocol !== 'https:' &&
      !(jwks.protocol === 'http:' && new URL(issuer).protocol === 'http:')
    ) {
      throw new HoopError('AUTH_INVALID_TOKEN', `the jwks_uri of ${issuer} is not https`);
    }
    return doc as ProviderMetadata;
  }
}
