import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinParts } from './pump.js';

describe('joinParts', () => {
  const chunk = Buffer.from('aaaabbbbccccdddd');

  it('takes consecutive views of one chunk as one view, without a copy', () => {
    const joined = joinParts([chunk.subarray(0, 4), chunk.subarray(4, 8), chunk.subarray(8, 12)]);
    assert.equal(joined.toString(), 'aaaabbbbcccc');
    assert.equal(joined.buffer, chunk.buffer);
    assert.equal(joined.byteOffset, chunk.byteOffset);
  });

  it('joins the bytes in order when a part is not where the one before it ends', () => {
    const replaced = Buffer.from('XXXX');
    const cases: Array<[Buffer[], string]> = [
      [[chunk.subarray(0, 4), replaced, chunk.subarray(8, 12)], 'aaaaXXXXcccc'],
      [[chunk.subarray(0, 4), chunk.subarray(8, 12)], 'aaaacccc'], // a frame dropped between
      [[chunk.subarray(4, 8), chunk.subarray(0, 4)], 'bbbbaaaa'], // out of order
      [[chunk.subarray(0, 4), Buffer.from(chunk.subarray(4, 8))], 'aaaabbbb'], // another memory
    ];
    for (const [parts, want] of cases) assert.equal(joinParts(parts).toString(), want);
  });

  it('returns a single part as it is', () => {
    const part = chunk.subarray(4, 8);
    assert.equal(joinParts([part]), part);
  });
});
