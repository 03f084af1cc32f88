import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WARM_UP_MAX_CLIENTS, WARM_UP_MAX_S, warmUpPlan } from './matrix.js';

describe('warm-up plan', () => {
  it('warms up with the most clients measured, at most 8, for at most 3 s', () => {
    assert.deepEqual(warmUpPlan([1, 8, 32], 5), {
      clients: WARM_UP_MAX_CLIENTS,
      durationS: WARM_UP_MAX_S,
    });
    assert.deepEqual(warmUpPlan([1], 2), { clients: 1, durationS: 2 });
    assert.deepEqual(warmUpPlan([4, 2], 10), { clients: 4, durationS: 3 });
  });

  it('never plans an empty run', () => {
    assert.deepEqual(warmUpPlan([], 0.2), { clients: 1, durationS: 1 });
  });
});
