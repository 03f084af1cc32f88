import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Policy } from '@hoop/shared';
import { type ColumnPlan, MaskCounts, Masker } from './masking.js';
import { encodeDataRow } from './protocol.js';
import { rowMayChange } from './response-masking.js';

const policy: Policy = {
  masking: {
    columns: [{ column: 'public.customers.email', strategy: 'redact' }],
    detectors: ['email', 'credit_card', 'iban', 'phone', 'us_ssn', 'jwt'],
  },
};
const masker = new Masker(policy, Buffer.alloc(32, 7));

const TEXT = 25;
const INT4 = 23;
const BYTEA = 17;
const plans: ReadonlyArray<ColumnPlan | undefined> = [
  undefined,
  { column: undefined, strategy: undefined, typeOid: TEXT, binary: false },
  { column: undefined, strategy: undefined, typeOid: TEXT, binary: true },
  { column: undefined, strategy: undefined, typeOid: INT4, binary: true },
  { column: undefined, strategy: undefined, typeOid: BYTEA, binary: false },
  { column: 'public.customers.email', strategy: 'redact', typeOid: TEXT, binary: false },
];

/** A small deterministic generator, so a failure can be replayed. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const pieces = [
  'alice@example.com',
  '4111 1111 1111 1111',
  'DE89 3704 0044 0532 0130 00',
  '+44 20 7946 0958',
  '123-45-6789',
  'eyJhbGciOi.eyJzdWIiOi.sig',
  '\\x626f6240636f72702e696f', // bob@corp.io, as bytea's hex output
  '\\x',
  '9f86d081884c7d659a2feaa0c55ad015',
  'plain words',
  'é',
  '42',
  '-',
  ' ',
];

describe('Masker.mayChange', () => {
  it('is false only for values maskValue gives back as they are, counting nothing', () => {
    const random = lcg(23);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
    let unchanged = 0;
    let changed = 0;
    for (let n = 0; n < 5_000; n++) {
      let text = '';
      const parts = Math.floor(random() * 4);
      for (let i = 0; i < parts; i++) text += pick(pieces);
      // In the middle of a larger buffer, as a value lies in its DataRow.
      const frame = Buffer.concat([Buffer.from('ab'), Buffer.from(text), Buffer.from('cd')]);
      const value = frame.subarray(2, frame.length - 2);
      const plan = pick(plans);
      const counts = new MaskCounts();
      const masked = masker.maskValue(value, plan, counts);
      if (!masker.mayChange(frame, 2, frame.length - 2, plan)) {
        assert.equal(masked, value, `${JSON.stringify(text)} under ${JSON.stringify(plan)}`);
        assert.equal(counts.empty, true, JSON.stringify(text));
        unchanged++;
      } else if (masked !== value) changed++;
    }
    // Both kinds are common in this mix, so the assertion above was exercised.
    assert.ok(unchanged > 1_000 && changed > 1_000, `unchanged ${unchanged}, changed ${changed}`);
  });
});

describe('rowMayChange', () => {
  const plan: ColumnPlan[] = [
    { column: undefined, strategy: undefined, typeOid: INT4, binary: false },
    { column: undefined, strategy: undefined, typeOid: TEXT, binary: false },
  ];
  const row = (values: (string | null)[]) =>
    encodeDataRow(values.map((v) => (v === null ? null : Buffer.from(v))));

  it('passes a row nothing can be found in, NULLs included', () => {
    assert.equal(rowMayChange(row(['42', 'just some text']), plan, masker), false);
    assert.equal(rowMayChange(row([null, 'just some text']), plan, masker), false);
    assert.equal(rowMayChange(row([]), [], masker), false);
  });

  it('sends a row with something to mask, or under a column strategy, to the masker', () => {
    assert.equal(rowMayChange(row(['42', 'mail alice@example.com']), plan, masker), true);
    const masked: ColumnPlan[] = [
      { column: 'public.customers.email', strategy: 'redact', typeOid: TEXT, binary: false },
    ];
    assert.equal(rowMayChange(row(['bob']), masked, masker), true);
  });

  it('leaves a frame that does not add up to the decoder', () => {
    const good = row(['42', 'just some text']);
    const cases: Array<[string, Buffer]> = [
      ['truncated value', good.subarray(0, good.length - 3)],
      ['trailing bytes', Buffer.concat([good, Buffer.from('zz')])],
      ['no count', good.subarray(0, 6)],
      [
        'count past the values',
        Buffer.concat([good.subarray(0, 5), Buffer.from([0, 3]), good.subarray(7)]),
      ],
    ];
    for (const [name, frame] of cases) assert.equal(rowMayChange(frame, plan, masker), true, name);
  });
});
