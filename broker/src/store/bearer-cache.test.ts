import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BearerCache, type CachedBearer } from './bearer-cache.js';

function bearer(name: string): CachedBearer {
  return {
    tokenId: `t-${name}`,
    tokenName: 'cli',
    expiresAt: null,
    lastUsedAt: null,
    userId: `u-${name}`,
    name,
    role: 'user',
    kind: 'person',
    groups: [],
  };
}

describe('BearerCache', () => {
  it('answers from memory until the entry ages out', () => {
    const cache = new BearerCache(10, 1000);
    cache.set('h1', bearer('alice'), cache.current, 5000);
    assert.equal(cache.get('h1', 5999)?.name, 'alice');
    assert.equal(cache.get('h1', 6000), undefined, 'aged out');
    assert.equal(cache.size, 0);
    cache.set('h1', bearer('alice'), cache.current, 5000);
    assert.equal(cache.get('h1', 4999), undefined, 'a clock that went back trusts nothing');
  });

  it('forgets everything on a change, and refuses answers read before it', () => {
    const cache = new BearerCache(10, 60_000);
    cache.set('h1', bearer('alice'), cache.current, 0);
    const readAt = cache.current;
    cache.forget();
    assert.equal(cache.get('h1', 1), undefined);
    cache.set('h2', bearer('bob'), readAt, 1);
    assert.equal(cache.get('h2', 2), undefined, 'read before the change: not kept');
    cache.set('h2', bearer('bob'), cache.current, 1);
    assert.equal(cache.get('h2', 2)?.name, 'bob');
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const cache = new BearerCache(3, 60_000);
    for (const name of ['a', 'b', 'c', 'd']) cache.set(name, bearer(name), cache.current, 0);
    assert.equal(cache.size, 3);
    assert.equal(cache.get('a', 1), undefined);
    assert.equal(cache.get('d', 1)?.name, 'd');
  });
});
