/**
 * Verified bearer tokens of an exclusive store (the embedded PGlite one, which only this process
 * writes), by token hash: a CI job or psql that opens a native session per connection would
 * otherwise pay one store query per connection just to learn again who its token belongs to.
 *
 * Correctness does not rest on the expiry of entries: every change to identities or tokens made
 * through the store (revoke, delete, disable, groups) calls `forget()`, which drops every entry
 * at once and bumps a generation, so a lookup that read the database before such a change cannot
 * put its (now stale) answer back. Entries also age out after `ttlMs`, and only positive answers
 * are kept: an unknown or revoked token always asks the database. Token expiry is checked by the
 * caller on every use against the entry's own `expiresAt`.
 */
import type { UserRole } from './schema.js';

export interface CachedBearer {
  readonly tokenId: string;
  readonly tokenName: string;
  readonly expiresAt: number | null;
  /** When the use was last recorded (last_used_at), ms; the caller updates it. */
  lastUsedAt: number | null;
  readonly userId: string;
  readonly name: string;
  readonly role: UserRole;
  readonly kind: 'person' | 'service';
  readonly groups: readonly string[];
}

interface Entry {
  readonly bearer: CachedBearer;
  readonly storedAt: number;
}

export class BearerCache {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;

  constructor(
    private readonly maxEntries = 1024,
    private readonly ttlMs = 30_000,
  ) {}

  /** The generation to pass to `set` for an answer read from the database from now on. */
  get current(): number {
    return this.generation;
  }

  get(tokenHash: string, now: number): CachedBearer | undefined {
    const entry = this.entries.get(tokenHash);
    if (entry === undefined) return undefined;
    if (now - entry.storedAt >= this.ttlMs || now < entry.storedAt) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    return entry.bearer;
  }

  /** Keeps `bearer`, read at `generation`, unless identities changed since. */
  set(tokenHash: string, bearer: CachedBearer, generation: number, now: number): void {
    if (generation !== this.generation) return;
    this.entries.delete(tokenHash);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(tokenHash, { bearer, storedAt: now });
  }

  /** Something about identities or tokens changed: nothing cached is trusted any more. */
  forget(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
