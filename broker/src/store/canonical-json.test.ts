/**
 * canonicalJson is part of every stored audit row's hash: its output may never change, or rows
 * stored before would stop verifying. The reference below is the definition it was first
 * written as (entries filtered, sorted with < and >, joined); the implementation must produce
 * exactly the same text for every value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, rowHash, storedRowHash } from './audit.js';

function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return reference((value as { toJSON: () => unknown }).toJSON());
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== 'function')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
}

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'B', 'b', 'é', 'Z', '_', '10', '2', 'ключ', '😀', 'a"b', '', 'type', 'at'];
const LEAVES: unknown[] = [
  0,
  -0,
  1.5,
  -7,
  1e21,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  null,
  undefined,
  'x',
  'quote " and \\ backslash',
  'line\nbreak',
  '\u2028',
  'ünïcödé 😀',
  new Date(1_700_000_000_000),
  () => 1,
];

function randomValue(next: () => number, depth: number): unknown {
  const pick = next();
  if (depth > 3 || pick < 0.4) return LEAVES[Math.floor(next() * LEAVES.length)];
  if (pick < 0.7) {
    return Array.from({ length: Math.floor(next() * 5) }, () => randomValue(next, depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 6); i > 0; i--) {
    out[KEYS[Math.floor(next() * KEYS.length)] as string] = randomValue(next, depth + 1);
  }
  return out;
}

describe('canonicalJson', () => {
  it('is the reference form for every value (10,000 random ones and the edge cases)', () => {
    for (const value of [...LEAVES, [], {}, [undefined, () => 1], { a: undefined, b: () => 1 }]) {
      assert.equal(canonicalJson(value), reference(value));
    }
    const next = rng(7);
    for (let i = 0; i < 10_000; i++) {
      const value = randomValue(next, 0);
      assert.equal(canonicalJson(value), reference(value));
    }
  });

  it('sorts keys by UTF-16 code units at every level', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' }, B: null, é: 2 }),
      '{"B":null,"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1,"é":2}',
    );
  });

  it('hashes a row to be stored exactly as verification will hash it from the database', () => {
    const samples: unknown[] = [
      { type: 'statement', text: 'select 1', rows: 1, params: ['a', null], masked: undefined },
      { nested: { z: [1, undefined, -0, 1e21, 0.1 + 0.2], a: new Date(Date.UTC(2025, 0, 1)) } },
      { text: 'ünïcødé \u2028 "quoted" \\ \ud83d\ude00', buffer: Buffer.from('hi') },
      'a string',
      null,
      undefined,
      [],
    ];
    const at = new Date(Date.UTC(2025, 5, 6, 7, 8, 9, 10));
    const receivedAt = new Date(at.getTime() + 5);
    for (const data of samples) {
      for (const ids of [
        { sessionId: 's-1', agentId: 'a-1', seq: 42 },
        { sessionId: null, agentId: null, seq: null },
      ]) {
        const row = { ...ids, type: 'statement' };
        // What verification reads back: the JSON value jsonb stored.
        const fromDatabase = JSON.parse(JSON.stringify(data ?? null)) as unknown;
        assert.equal(
          storedRowHash(
            'f'.repeat(64),
            { ...row, at: at.toISOString(), receivedAt: receivedAt.toISOString() },
            canonicalJson(data),
          ),
          rowHash('f'.repeat(64), { ...row, at, receivedAt, data: fromDatabase }),
        );
      }
    }
  });
});
