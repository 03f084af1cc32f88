import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from './group-commit.js';

/** A write that takes one macrotask, records its groups, and fails groups holding `bad`. */
function recorder(bad?: number) {
  const groups: number[][] = [];
  const write = async (items: readonly number[]) => {
    await new Promise((r) => setImmediate(r));
    if (bad !== undefined && items.includes(bad)) throw new Error(`bad ${bad}`);
    groups.push([...items]);
  };
  return { groups, write };
}

describe('GroupCommit', () => {
  it('writes the first item at once and the ones that arrive meanwhile together, in order', async () => {
    const r = recorder();
    const commit = new GroupCommit(r.write);
    await Promise.all([1, 2, 3, 4].map((n) => commit.add(n)));
    assert.deepEqual(r.groups, [[1], [2, 3, 4]]);
    assert.equal(commit.pending, 0);
    await commit.add(5);
    assert.deepEqual(r.groups.at(-1), [5]);
  });

  it('keeps groups within maxItems', async () => {
    const r = recorder();
    const commit = new GroupCommit(r.write, { maxItems: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => commit.add(n)));
    assert.deepEqual(r.groups, [[1], [2, 3], [4, 5]]);
  });

  it('retries a failed group one by one: only the bad item fails', async () => {
    const r = recorder(3);
    const commit = new GroupCommit(r.write);
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => commit.add(n)));
    assert.deepEqual(
      results.map((x) => x.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[2] as PromiseRejectedResult).reason), /bad 3/);
    assert.deepEqual(r.groups, [[1], [2], [4]]);
    // And it keeps working.
    await commit.add(7);
    assert.deepEqual(r.groups.at(-1), [7]);
  });
});
