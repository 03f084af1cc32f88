/** HeldBatch: what approvers see of an extended-protocol batch, its bounds, and its end. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeRun, HeldBatch } from './held-batch.js';
import { FrontendCode } from './messages.js';
import { encodeParse } from './protocol.js';
import { PacketReader, type PgFrame } from './reader.js';
import { parseReviewErrorDetail, reviewErrorDetail } from './review-gate.js';
import { encodeMessage } from './writer.js';

/** Bind ('B'): portal, statement, text parameters (null: NULL), no result formats. */
function bind(portal: string, statement: string, params: (string | null)[]): Buffer {
  const parts = [Buffer.from(`${portal}\0${statement}\0`), Buffer.from([0, 0])];
  const count = Buffer.alloc(2);
  count.writeInt16BE(params.length);
  parts.push(count);
  for (const p of params) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(p === null ? -1 : Buffer.byteLength(p));
    parts.push(len);
    if (p !== null) parts.push(Buffer.from(p));
  }
  parts.push(Buffer.from([0, 0]));
  return encodeMessage(FrontendCode.bind, Buffer.concat(parts));
}

const execute = (portal: string) => {
  const body = Buffer.alloc(Buffer.byteLength(portal) + 5);
  body.write(`${portal}\0`);
  return encodeMessage(FrontendCode.execute, body);
};
const sync = encodeMessage(FrontendCode.sync);
const flush = encodeMessage(FrontendCode.flush);

function frames(...messages: Buffer[]): PgFrame[] {
  const reader = new PacketReader({ side: 'client', maxStartupBytes: 8, maxMessageBytes: 1 << 20 });
  reader.push(Buffer.concat(messages));
  const out: PgFrame[] = [];
  for (let f = reader.nextFrame(); f !== undefined; f = reader.nextFrame()) out.push(f);
  return out;
}

const limits = { maxMessages: 100, maxBytes: 1 << 20 };
const nothingKnown = { statement: () => undefined, portal: () => undefined };

describe('HeldBatch', () => {
  it('shows each Execute with its bound parameters, quoted, NULL as NULL', () => {
    const batch = new HeldBatch('insert', limits);
    for (const f of frames(
      encodeParse('', 'insert into t values ($1, $2)', []),
      bind('', '', ["it's", null]),
      execute(''),
      sync,
    ))
      assert.ok(batch.add(f));
    assert.equal(
      batch.reviewText(nothingKnown),
      "insert into t values ($1, $2)\n-- parameters: $1 = 'it''s', $2 = NULL",
    );
    assert.ok(batch.endsWithSync);
  });

  it('uses statements prepared in earlier batches, and joins several runs', () => {
    const batch = new HeldBatch('delete', limits);
    for (const f of frames(bind('p1', 's1', ['7']), execute('p1'), execute('p1'), flush))
      batch.add(f);
    const known = {
      statement: (n: string) => (n === 's1' ? 'delete from t where id = $1' : undefined),
      portal: () => undefined,
    };
    const text = batch.reviewText(known);
    assert.equal(
      text,
      [
        "delete from t where id = $1\n-- parameters: $1 = '7'",
        "delete from t where id = $1\n-- parameters: $1 = '7'",
      ].join(';\n'),
    );
    assert.equal(batch.endsWithSync, false);
  });

  it('needs no review when the batch runs nothing (Parse and Sync only)', () => {
    const batch = new HeldBatch('insert', limits);
    for (const f of frames(encodeParse('s', 'insert into t values (1)', []), sync)) batch.add(f);
    assert.equal(batch.reviewText(nothingKnown), undefined);
  });

  it('keeps copies and refuses past its bounds', () => {
    const [parse, end] = frames(encodeParse('', 'insert into t values (1)', []), sync) as [
      PgFrame,
      PgFrame,
    ];
    const small = new HeldBatch('insert', { maxMessages: 1, maxBytes: 1 << 20 });
    assert.ok(small.add(parse));
    assert.equal(small.add(end), false);
    parse.frame.fill(0); // the reader's buffer is reused; the batch kept its own bytes
    assert.equal(small.frames[0]?.code, FrontendCode.parse);
    const tiny = new HeldBatch('insert', { maxMessages: 10, maxBytes: 8 });
    assert.equal(
      tiny.add(frames(encodeParse('', 'insert into t values (1)', []))[0] as PgFrame),
      false,
    );
    assert.ok(
      HeldBatch.ends(frames(sync)[0] as PgFrame) && HeldBatch.ends(frames(flush)[0] as PgFrame),
    );
  });

  it('describeRun leaves a statement without parameters as it is', () => {
    assert.equal(describeRun('create table t (id int)', []), 'create table t (id int)');
  });
});

describe('review error detail', () => {
  it('round-trips the code and review, and ignores other details', () => {
    const detail = reviewErrorDetail('PENDING_APPROVAL', '6f1c');
    assert.equal(detail, 'hoop error PENDING_APPROVAL, review 6f1c');
    assert.deepEqual(parseReviewErrorDetail(detail), { code: 'PENDING_APPROVAL', review: '6f1c' });
    assert.deepEqual(parseReviewErrorDetail(reviewErrorDetail('TUNNEL_CLOSED', undefined)), {
      code: 'TUNNEL_CLOSED',
      review: undefined,
    });
    assert.equal(parseReviewErrorDetail('Key (id)=(1) already exists.'), undefined);
    assert.equal(parseReviewErrorDetail('hoop error NO_SUCH_CODE'), undefined);
  });
});
