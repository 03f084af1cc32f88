import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '@hoop/shared';
import { ResolveCache } from './resolve-cache.js';

function setup(ttlMs = 5000) {
  const clock = new FakeClock(1000);
  const changes = { n: 0 };
  const loads: string[] = [];
  let fail = false;
  const cache = new ResolveCache<string>({
    load: async (name) => {
      loads.push(name);
      if (fail) throw new Error('store down');
      return `${name}@${changes.n}`;
    },
    generation: () => changes.n,
    clock,
    ttlMs,
  });
  return { cache, clock, changes, loads, setFail: (v: boolean) => (fail = v) };
}

describe('ResolveCache', () => {
  it('reuses an entry until the generation moves', async () => {
    const { cache, changes, loads } = setup();
    assert.equal(await cache.get('pg'), 'pg@0');
    assert.equal(await cache.get('pg'), 'pg@0');
    assert.deepEqual(loads, ['pg']);
    changes.n++;
    assert.equal(await cache.get('pg'), 'pg@1');
    assert.deepEqual(loads, ['pg', 'pg']);
  });

  it('loads again once the entry is older than the ttl', async () => {
    const { cache, clock, loads } = setup(5000);
    await cache.get('pg');
    clock.advance(4999);
    await cache.get('pg');
    assert.equal(loads.length, 1);
    clock.advance(1);
    await cache.get('pg');
    assert.equal(loads.length, 2);
  });

  it('does not cache failures', async () => {
    const { cache, loads, setFail } = setup();
    setFail(true);
    await assert.rejects(cache.get('pg'), /store down/);
    setFail(false);
    assert.equal(await cache.get('pg'), 'pg@0');
    assert.equal(loads.length, 2);
  });

  it('never reuses with a zero ttl', async () => {
    const { cache, loads } = setup(0);
    await cache.get('pg');
    await cache.get('pg');
    assert.equal(loads.length, 2);
  });

  it('a load that overlaps a change is not served after it', async () => {
    const clock = new FakeClock(0);
    let generation = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const cache = new ResolveCache<number>({
      load: async () => {
        calls++;
        if (calls === 1) await gate;
        return calls;
      },
      generation: () => generation,
      clock,
      ttlMs: 5000,
    });
    const first = cache.get('pg');
    generation++; // a policy change lands while the first load is in flight
    release();
    assert.equal(await first, 1);
    assert.equal(await cache.get('pg'), 2);
  });
});
