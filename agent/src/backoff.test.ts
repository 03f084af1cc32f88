import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('grows exponentially up to the cap, with jitter inside the bounds', () => {
    const low = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0 });
    const high = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 1 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => low.next()),
      [100, 100, 100, 100, 100, 100],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => high.next()),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });

  it('starts over after reset', () => {
    const b = new Backoff({ baseMs: 50, capMs: 10_000, random: () => 1 });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.next(), 50);
  });
});
