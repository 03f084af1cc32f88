import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit, WriteSettler } from './group-commit.js';

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

  it('when busy, lingers so that writes arriving a few ms apart share a group', async () => {
    const r = recorder();
    const commit = new GroupCommit(r.write, {
      maxItems: 500,
      linger: { ms: 40, busyWithinMs: 10_000 },
    });
    const started = performance.now();
    await commit.add(1);
    assert.ok(performance.now() - started < 40, 'an idle group commit writes at once');
    const spaced = [commit.add(2)];
    await new Promise((r) => setTimeout(r, 5));
    spaced.push(commit.add(3));
    await new Promise((r) => setTimeout(r, 5));
    spaced.push(commit.add(4));
    await Promise.all(spaced);
    assert.deepEqual(r.groups, [[1], [2, 3, 4]]);
  });

  it('settles: a lingering group is written at once, and everything added so far is done', async () => {
    const r = recorder();
    const settler = new WriteSettler();
    const commit = new GroupCommit(r.write, {
      maxItems: 500,
      linger: { ms: 60_000, busyWithinMs: 60_000 },
      settler,
    });
    await commit.add(1);
    const lingering = commit.add(2);
    const started = performance.now();
    await settler.settle();
    await lingering;
    assert.ok(performance.now() - started < 5_000, 'did not wait out the linger');
    assert.deepEqual(r.groups, [[1], [2]]);
    assert.equal(commit.pending, 0);
    await settler.settle();
  });
});
