/**
 * The broker's grant-signing keys as the agent knows them: fetched from
 * `<brokerUrl>/.well-known/jwks.json`, cached by kid, refetched when a grant names a kid the cache
 * lacks (rotation) — at most once per `minRefetchMs`, one fetch at a time, with a timeout and a
 * size bound, so a stream of unknown kids cannot make the agent hammer the broker.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Clock, HoopError, type Logger } from '@hoop/shared';

export interface JwksCacheOptions {
  readonly url: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  /** Least time between two fetches; a lookup inside it waits for the next allowed fetch. */
  readonly minRefetchMs?: number;
  readonly maxKeys?: number;
  readonly maxBytes?: number;
}

/** `<brokerUrl>/.well-known/jwks.json` */
export function jwksUrl(brokerUrl: string): string {
  const url = new URL(brokerUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/.well-known/jwks.json`;
  url.search = '';
  return url.toString();
}

export class JwksCache {
  private keys = new Map<string, KeyObject>();
  private lastFetch: number | undefined;
  private fetching: Promise<void> | undefined;
  private readonly minRefetchMs: number;

  constructor(private readonly options: JwksCacheOptions) {
    this.minRefetchMs = options.minRefetchMs ?? 1_000;
  }

  get size(): number {
    return this.keys.size;
  }

  /** The key for `kid`, fetching the JWKS when it is not cached; undefined if the broker has none. */
  async key(kid: string): Promise<KeyObject | undefined> {
    const cached = this.keys.get(kid);
    if (cached !== undefined) return cached;
    await this.refresh();
    return this.keys.get(kid);
  }

  /** Fetches the JWKS again (rate-limited, single-flight). Failures leave the cache as it was. */
  refresh(): Promise<void> {
    this.fetching ??= this.fetchBounded().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetchBounded(): Promise<void> {
    const { clock } = this.options;
    if (this.lastFetch !== undefined) {
      const wait = this.lastFetch + this.minRefetchMs - clock.now();
      if (wait > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, wait));
    }
    this.lastFetch = clock.now();
    try {
      this.keys = await this.download();
    } catch (err) {
      const error =
        err instanceof HoopError
          ? err
          : new HoopError(
              'BROKER_UNREACHABLE',
              `cannot fetch the broker's grant keys: ${(err as Error).message}`,
            );
      this.options.logger.warn('could not refresh the broker grant keys', {
        code: error.code,
        reason: error.message,
      });
    }
  }

  private async download(): Promise<Map<string, KeyObject>> {
    const doFetch = this.options.fetch ?? fetch;
    const response = await doFetch(this.options.url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
    });
    const maxBytes = this.options.maxBytes ?? 256 * 1024;
    const text = await response.text();
    if (!response.ok) {
      throw new HoopError(
        'BROKER_UNREACHABLE',
        `the broker answered HTTP ${response.status} for its JWKS`,
      );
    }
    if (text.length > maxBytes) {
      throw new HoopError(
        'BROKER_UNREACHABLE',
        `the broker's JWKS is larger than ${maxBytes} bytes`,
      );
    }
    const body = JSON.parse(text) as { keys?: unknown };
    if (!Array.isArray(body.keys)) {
      throw new HoopError('BROKER_UNREACHABLE', "the broker's JWKS has no keys array");
    }
    const keys = new Map<string, KeyObject>();
    for (const jwk of body.keys.slice(0, this.options.maxKeys ?? 64)) {
      const { kid, kty, crv, x, alg } = (jwk ?? {}) as Record<string, unknown>;
      // Only Ed25519 public keys; anything else in the set is ignored, never trusted.
      if (typeof kid !== 'string' || kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string') {
        continue;
      }
      if (alg !== undefined && alg !== 'EdDSA') continue;
      try {
        keys.set(kid, createPublicKey({ key: { kty, crv, x }, format: 'jwk' }));
      } catch {
        // a malformed key is skipped
      }
    }
    return keys;
  }
}
