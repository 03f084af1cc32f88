/**
 * The broker's grant-signing keys: Ed25519 (JWS alg EdDSA) key pairs made with `jose`, stored in
 * `signing_keys` with the private half encrypted under the master key (bound to its kid), and
 * published as a JWKS. Rotation: a new key signs from then on; retired keys stay published (and
 * accepted) for `retentionSeconds` — the longest a grant can live — so grants they signed stay
 * verifiable until they expire anyway.
 */
import { HoopError } from '@hoop/shared';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey as JoseKey,
  type JWK,
} from 'jose';
import type { StoreContext } from '../store/context.js';
import { getSigningKey, insertSigningKey, listSigningKeys } from '../store/grants.js';
import type { SigningKeyRow } from '../store/schema.js';
import { decryptSecret, encryptSecret } from '../store/secrets.js';
import { GRANT_ALGORITHM } from './claims.js';

export interface KeyRingOptions {
  /** How long a retired key stays published and accepted, in seconds. */
  readonly retentionSeconds: number;
  /** How long this broker signs with the active key it loaded before looking again. */
  readonly refreshMs?: number;
}

interface PublicEntry {
  readonly key: JoseKey | Uint8Array;
  /** epoch ms, or null while active */
  readonly retiredAt: number | null;
}

/** One published key, as in a JWKS (RFC 7517). */
export interface PublishedJwk extends JWK {
  readonly kid: string;
  readonly alg: string;
  readonly use: 'sig';
}

const AAD_PREFIX = 'signing-key:';

export class KeyRing {
  private active: { kid: string; key: JoseKey | Uint8Array; loadedAt: number } | undefined;
  private loading: Promise<{ kid: string; key: JoseKey | Uint8Array }> | undefined;
  private readonly publicKeys = new Map<string, PublicEntry>();
  private readonly refreshMs: number;

  constructor(
    private readonly ctx: StoreContext,
    private readonly options: KeyRingOptions,
  ) {
    this.refreshMs = options.refreshMs ?? 60_000;
  }

  /** The key new grants are signed with: the newest active one, created when there is none. */
  async signingKey(): Promise<{ kid: string; key: JoseKey | Uint8Array }> {
    const now = this.ctx.clock.now();
    if (this.active !== undefined && now - this.active.loadedAt < this.refreshMs)
      return this.active;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** Makes a new signing key and retires the others; returns the new kid. */
  async rotate(): Promise<string> {
    const created = await this.create(true);
    this.active = { ...created, loadedAt: this.ctx.clock.now() };
    // Retired keys' cache entries carry no retiredAt yet; drop them so the next lookup rereads.
    for (const kid of [...this.publicKeys.keys()])
      if (kid !== created.kid) this.publicKeys.delete(kid);
    return created.kid;
  }

  /** The public key for `kid`, if it is one of ours and still accepted. */
  async publicKey(kid: string): Promise<JoseKey | Uint8Array | undefined> {
    let entry = this.publicKeys.get(kid);
    if (entry === undefined) {
      const row = await getSigningKey(this.ctx, kid);
      if (row === undefined || row.algorithm !== GRANT_ALGORITHM) return undefined;
      entry = {
        key: await importJWK(row.publicJwk as JWK, GRANT_ALGORITHM),
        retiredAt: row.retiredAt?.getTime() ?? null,
      };
      if (this.publicKeys.size >= 256) this.publicKeys.clear();
      this.publicKeys.set(kid, entry);
    }
    if (
      entry.retiredAt !== null &&
      entry.retiredAt + this.options.retentionSeconds * 1000 <= this.ctx.clock.now()
    ) {
      return undefined;
    }
    return entry.key;
  }

  /** The JWKS: every active key and every retired key still inside the retention window. */
  async jwks(): Promise<{ keys: PublishedJwk[] }> {
    const rows = await listSigningKeys(this.ctx, this.retentionCutoff());
    return { keys: rows.filter((r) => r.algorithm === GRANT_ALGORITHM).map(publish) };
  }

  private retentionCutoff(): Date {
    return new Date(this.ctx.clock.now() - this.options.retentionSeconds * 1000);
  }

  private async load(): Promise<{ kid: string; key: JoseKey | Uint8Array }> {
    const rows = await listSigningKeys(this.ctx, this.retentionCutoff());
    const row = rows.find((r) => r.retiredAt === null && r.algorithm === GRANT_ALGORITHM);
    const loaded = row === undefined ? await this.create(false) : await this.unseal(row);
    this.active = { ...loaded, loadedAt: this.ctx.clock.now() };
    return loaded;
  }

  private async unseal(row: SigningKeyRow): Promise<{ kid: string; key: JoseKey | Uint8Array }> {
    const jwk = JSON.parse(
      decryptSecret(this.ctx.masterKey, row.privateCiphertext, AAD_PREFIX + row.kid),
    ) as JWK;
    return { kid: row.kid, key: await importJWK(jwk, GRANT_ALGORITHM) };
  }

  private async create(retireOthers: boolean): Promise<{ kid: string; key: JoseKey }> {
    const pair = await generateKeyPair(GRANT_ALGORITHM, { crv: 'Ed25519', extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    if (publicJwk.kty !== 'OKP' || privateJwk.d === undefined) {
      throw new HoopError('INTERNAL', 'could not generate a grant-signing key');
    }
    await insertSigningKey(
      this.ctx,
      {
        kid,
        algorithm: GRANT_ALGORITHM,
        publicJwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x },
        privateCiphertext: encryptSecret(
          this.ctx.masterKey,
          JSON.stringify(privateJwk),
          AAD_PREFIX + kid,
        ),
      },
      { retireOthers },
    );
    this.ctx.logger.info('created a grant-signing key', { kid });
    return { kid, key: pair.privateKey };
  }
}

function publish(row: SigningKeyRow): PublishedJwk {
  const jwk = row.publicJwk as JWK;
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid: row.kid, alg: row.algorithm, use: 'sig' };
}
