import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detect, featuresOf } from './detectors.js';

/** A small deterministic generator, so a failure can be replayed. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe('detector gates', () => {
  it('the longest digit run reaches 13 exactly when the card pattern can match', () => {
    const card = /\d(?:[ -]?\d){12,}/;
    const gate = (t: string) => featuresOf(t).longestRun >= 13;
    const random = lcg(7);
    const alphabet = '0123456789 -a.';
    for (let n = 0; n < 20_000; n++) {
      const length = 10 + Math.floor(random() * 40);
      let text = '';
      for (let i = 0; i < length; i++) {
        // Digits most of the time, so long runs are common.
        text +=
          random() < 0.75
            ? String(Math.floor(random() * 10))
            : alphabet[10 + Math.floor(random() * 4)];
      }
      assert.equal(gate(text), card.test(text), JSON.stringify(text));
    }
  });

  it('sees every gate feature in one pass', () => {
    const cases: Array<[string, Partial<ReturnType<typeof featuresOf>>]> = [
      ['a@b', { at: true, plus: false, dash: false, keyish: false }],
      ['call +44', { plus: true, digits: 2 }],
      ['x-y', { dash: true }],
      ['sk_live', { keyish: true }],
      ['token eyJhbGci', { keyish: true }],
      ['AKIAABCD', { keyish: true }],
      ['xoxb-1', { keyish: true, dash: true }],
      ['ey J', { keyish: false }],
      ['12 34-5 -6', { digits: 6, longestRun: 5 }],
    ];
    for (const [text, want] of cases) {
      const got = featuresOf(text);
      for (const [key, value] of Object.entries(want)) {
        assert.equal(got[key as keyof typeof got], value, `${key} of ${JSON.stringify(text)}`);
      }
    }
  });

  it('skips rows of hashes and ids without missing a card in them', () => {
    const all = new Set(['credit_card', 'us_ssn'] as const);
    const row = '42\t9f86d081884c7d659a2feaa0c55ad015\tpadding-padding';
    assert.deepEqual(detect(row, all), []);
    const withCard = `${row}\t4111 1111 1111 1111`;
    assert.deepEqual(
      detect(withCard, all).map((h) => withCard.slice(h.start, h.end)),
      ['4111 1111 1111 1111'],
    );
    assert.deepEqual(
      detect('ssn 123-45-6789', all).map((h) => h.detector),
      ['us_ssn'],
    );
  });
});
