/**
 * Grants this agent has already verified, by their exact JWT. The broker gives the sessions one
 * user opens on one connection in a short while the same session grant; checking its Ed25519
 * signature and claims again for each of them cost ~0.15 ms of a new connection's critical path.
 * A token seen before skips the signature and shape checks (they cannot have changed) but not
 * the ones that depend on the session and the time: expiry, connection, actions.
 *
 * Only verifications that succeeded are kept, at most `max` of them, the oldest dropped first;
 * expired ones are dropped as they are met.
 */
import {
  assertGrantUsable,
  type VerifiedGrant,
  type VerifyGrantOptions,
  verifyGrant,
} from './verify.js';

export const MAX_VERIFIED_GRANTS = 256;

export class VerifiedGrants {
  private readonly grants = new Map<string, VerifiedGrant>();

  constructor(private readonly max = MAX_VERIFIED_GRANTS) {}

  get size(): number {
    return this.grants.size;
  }

  async verify(token: unknown, options: VerifyGrantOptions): Promise<VerifiedGrant> {
    if (typeof token === 'string') {
      const known = this.grants.get(token);
      if (known !== undefined) {
        if (known.expiresAt <= options.now) this.grants.delete(token);
        assertGrantUsable(known, options);
        return known;
      }
    }
    const grant = await verifyGrant(token, options);
    this.remember(token as string, grant, options.now);
    return grant;
  }

  private remember(token: string, grant: VerifiedGrant, now: number): void {
    this.grants.set(token, grant);
    for (const [key, old] of this.grants) {
      if (this.grants.size <= this.max && old.expiresAt > now) break;
      this.grants.delete(key);
    }
  }
}
