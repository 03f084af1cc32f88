/**
 * The hub's cache of resolved connections (target, decrypted credential, policy), so opening a
 * session does not wait for the store each time. An entry is used only while the store's
 * connection generation is the one it was loaded under (every policy, tag or deletion change
 * made through this broker moves it) and for at most `ttlMs` (the bound on how long a change
 * made by another broker sharing the database can go unseen). Failures are not cached.
 */
import type { Clock } from '@hoop/shared';

/** Entries kept at most; past it the cache starts over (a broker has few connections). */
const MAX_ENTRIES = 1000;

interface Entry<T> {
  readonly value: T;
  readonly at: number;
  readonly generation: number;
}

export class ResolveCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly options: {
      readonly load: (name: string) => Promise<T>;
      readonly generation: () => number;
      readonly clock: Clock;
      readonly ttlMs: number;
    },
  ) {}

  async get(name: string): Promise<T> {
    const { clock, ttlMs } = this.options;
    const generation = this.options.generation();
    const hit = this.entries.get(name);
    if (hit !== undefined && hit.generation === generation && clock.now() - hit.at < ttlMs) {
      return hit.value;
    }
    const value = await this.options.load(name);
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(name, { value, at: clock.now(), generation });
    return value;
  }
}
