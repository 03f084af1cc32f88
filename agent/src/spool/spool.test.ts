import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type AuditEvent, silentLogger } from '@hoop/shared';
import { AuditSender } from '../audit-sender.js';
import {
  decodeRecord,
  encodeRecord,
  FILE_MAGIC,
  RECORD_HEADER_BYTES,
  scanSegment,
} from './record.js';
import { type QuarantineInfo, Spool } from './spool.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hoop-spool-test-'));
  dirs.push(d);
  return d;
}
const p = (s: string) => Buffer.from(s);
function open(dir: string, extra: Partial<ConstructorParameters<typeof Spool>[0]> = {}): Spool {
  return new Spool({ dir, logger: silentLogger, fsync: 'always', ...extra });
}
function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('seg-'))
    .sort();
}

describe('spool record format', () => {
  it('encodes length, crc, seq and payload, and decodes them back', () => {
    const rec = encodeRecord(42, p('{"a":1}'));
    assert.equal(rec.length, RECORD_HEADER_BYTES + 7);
    assert.equal(rec.readUInt32BE(0), 7);
    assert.equal(Number(rec.readBigUInt64BE(8)), 42);
    const d = decodeRecord(rec, 0, 1024);
    assert.equal(d.kind, 'record');
    if (d.kind === 'record') {
      assert.equal(d.record.seq, 42);
      assert.equal(d.record.payload.toString(), '{"a":1}');
      assert.equal(d.next, rec.length);
    }
  });

  it('reports a split record as partial at every offset, and any flipped bit as corrupt', () => {
    const rec = encodeRecord(7, p('hello world'));
    for (let i = 0; i < rec.length; i++)
      assert.equal(decodeRecord(rec.subarray(0, i), 0, 1024).kind, 'partial');
    for (let i = 4; i < rec.length; i++) {
      const bad = Buffer.from(rec);
      bad[i] = (bad[i] as number) ^ 0x01;
      assert.equal(decodeRecord(bad, 0, 1024).kind, 'corrupt', `bit flip at byte ${i}`);
    }
    assert.equal(decodeRecord(rec, 0, 3).kind, 'corrupt', 'length over the bound');
  });

  it('scans a segment: torn tail vs corruption in the middle', () => {
    const a = encodeRecord(1, p('a'));
    const b = encodeRecord(2, p('b'));
    const whole = Buffer.concat([FILE_MAGIC, a, b]);
    assert.deepEqual(
      scanSegment(whole, 1024).records.map((r) => r.seq),
      [1, 2],
    );
    const torn = scanSegment(whole.subarray(0, whole.length - 3), 1024);
    assert.equal(torn.tornTail, true);
    assert.equal(torn.corrupt, undefined);
    assert.deepEqual(
      torn.records.map((r) => r.seq),
      [1],
    );
    const bad = Buffer.from(whole);
    bad[FILE_MAGIC.length + RECORD_HEADER_BYTES] = 0x7a; // payload of record 1
    const c = scanSegment(bad, 1024);
    assert.match(c.corrupt ?? '', /CRC/);
    assert.equal(c.records.length, 0);
  });
});

describe('spool', () => {
  it('assigns monotonic seqs that survive restarts, even after everything was acked', () => {
    const dir = tempDir();
    let s = open(dir);
    assert.equal(s.append(p('1')), 1);
    assert.equal(s.append(p('2')), 2);
    s.ack(2);
    s.close();
    s = open(dir);
    assert.equal(s.pending, 0);
    assert.equal(s.append(p('3')), 3);
    s.close();
  });

  it('hands out only durable records, in consecutive batches, and deletes segments only after the ack', () => {
    const dir = tempDir();
    const s = open(dir, { fsync: 'batch', fsyncMs: 1_000_000, segmentBytes: 64 });
    for (let i = 0; i < 10; i++) s.append(p(`event-${i}-${'x'.repeat(20)}`));
    // Segment rolls fsync; records after the last roll wait for the batch fsync.
    const early = s.read(100, 1 << 20).map((r) => r.seq);
    assert.ok(s.durableSeq < 10);
    assert.ok(
      early.every((seq) => seq <= s.durableSeq),
      "nothing is read before it is fsync'd",
    );
    s.flush();
    s.rewind();
    const batch = s.read(4, 1 << 20);
    assert.deepEqual(
      batch.map((r) => r.seq),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      s.read(100, 1 << 20).map((r) => r.seq),
      [5, 6, 7, 8, 9, 10],
    );
    const before = segments(dir).length;
    assert.ok(before > 2, 'several segments');
    s.ack(4);
    assert.ok(segments(dir).length < before, 'acked segments deleted');
    s.rewind();
    assert.deepEqual(
      s.read(100, 1 << 20).map((r) => r.seq),
      [5, 6, 7, 8, 9, 10],
      'rewind resends unacked only',
    );
    s.ack(10);
    assert.equal(s.pending, 0);
    assert.equal(segments(dir).length, 1, 'only the empty active segment is left');
    s.close();
  });

  it('keeps a small acknowledged active segment until it holds rollAckedBytes, and rolls it at close', () => {
    const dir = tempDir();
    const s = open(dir, { fsync: 'batch', fsyncMs: 1_000_000, rollAckedBytes: 200 });
    for (let i = 1; i <= 3; i++) s.append(p(`small-${i}`));
    s.flush();
    const first = segments(dir);
    s.ack(3);
    assert.deepEqual(segments(dir), first, 'no roll: the same segment file, nothing created');
    assert.equal(s.pending, 0);
    // Past rollAckedBytes, the next full ack rolls: a new active segment named by the next seq.
    for (let i = 4; i <= 12; i++) s.append(p(`bigger-${i}-${'x'.repeat(20)}`));
    s.flush();
    s.ack(12);
    assert.deepEqual(segments(dir), ['seg-0000000000000013.spool']);
    s.append(p('after'));
    s.flush();
    s.ack(13);
    assert.deepEqual(segments(dir), ['seg-0000000000000013.spool'], 'small again: kept');
    s.close();
    assert.deepEqual(segments(dir), ['seg-0000000000000014.spool'], 'close leaves it empty');
    const again = open(dir);
    assert.equal(again.pending, 0, 'nothing acked is sent again after a clean stop');
    assert.equal(again.append(p('next')), 14);
    again.close();
  });

  it('sends acked records kept in the active segment again after a crash, and numbers on', () => {
    const dir = tempDir();
    const s = open(dir, { fsync: 'always' });
    for (let i = 1; i <= 3; i++) s.append(p(`e${i}`));
    s.ack(3);
    const copy = tempDir();
    cpSync(dir, copy, { recursive: true });
    writeFileSync(join(copy, 'lock'), '999999999\n');
    s.close();
    const again = open(copy);
    assert.deepEqual(
      again.read(100, 1 << 20).map((r) => r.seq),
      [1, 2, 3],
      'the broker skips these as duplicates',
    );
    assert.equal(again.append(p('e4')), 4);
    again.close();
  });

  it('syncSoon makes appended records durable without waiting for the batch window', async () => {
    const dir = tempDir();
    const s = open(dir, { fsync: 'batch', fsyncMs: 1_000_000 });
    s.append(p('a'));
    s.append(p('b'));
    assert.equal(s.durableSeq, 0);
    s.syncSoon();
    const end = Date.now() + 5_000;
    while (s.durableSeq < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.durableSeq, 2);
    s.close();
  });

  it('keeps everything appended across a crash (no close) and resends it', () => {
    const dir = tempDir();
    const s = open(dir, { fsync: 'batch', fsyncMs: 1_000_000 });
    for (let i = 1; i <= 5; i++) s.append(p(`e${i}`));
    s.ack(2); // the broker had stored 1..2
    // simulate kill -9: no close, lock left behind by a dead pid
    // What a kill -9 leaves on disk: the files as written, and a lock naming a dead process.
    const copy = tempDir();
    cpSync(dir, copy, { recursive: true });
    writeFileSync(join(copy, 'lock'), '999999999\n');
    const again = open(copy);
    // acks are not persisted: after a restart unacked-or-not, everything still on disk is resent
    // (the broker ignores the duplicates); segments the ack covered were already deleted
    assert.deepEqual(
      again.read(100, 1 << 20).map((r) => r.payload.toString()),
      ['e1', 'e2', 'e3', 'e4', 'e5'],
    );
    again.close();
  });

  it('cuts a torn tail and keeps the records before it', () => {
    const dir = tempDir();
    const s = open(dir);
    s.append(p('one'));
    s.append(p('two'));
    const file = join(dir, segments(dir)[0] as string);
    s.close();
    const bytes = readFileSync(file);
    writeFileSync(file, Buffer.concat([bytes, encodeRecord(3, p('three')).subarray(0, 10)]));
    const again = open(dir);
    assert.deepEqual(
      again.read(10, 1 << 20).map((r) => r.payload.toString()),
      ['one', 'two'],
    );
    assert.equal(again.append(p('three')), 3);
    again.close();
  });

  it('quarantines a corrupt segment and still delivers the others', () => {
    const dir = tempDir();
    const s = open(dir, { segmentBytes: 40 });
    for (let i = 1; i <= 6; i++) s.append(p(`event-${i}-${'y'.repeat(16)}`));
    s.close();
    const segs = segments(dir);
    assert.ok(segs.length >= 3);
    const victim = join(dir, segs[1] as string);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    writeFileSync(victim, bytes);
    const seen: QuarantineInfo[] = [];
    const again = open(dir, { segmentBytes: 40, onQuarantine: (q) => seen.push(q) });
    assert.equal(seen.length, 1);
    assert.match(seen[0]?.reason ?? '', /CRC/);
    assert.ok(existsSync(seen[0]?.movedTo ?? ''), 'moved into quarantine/');
    const got: number[] = [];
    for (;;) {
      const batch = again.read(100, 1 << 20);
      if (batch.length === 0) break;
      got.push(...batch.map((r) => r.seq));
    }
    assert.ok(got.length >= 4, `the other segments still read: ${got}`);
    assert.ok(!got.includes(2) || !got.includes(3), 'the quarantined records are not sent');
    const next = again.append(p('new'));
    assert.ok(next > 6, 'seqs are never reused after a quarantine');
    again.close();
  });

  it('reports full past its budget and refuses a second user of the directory', () => {
    const dir = tempDir();
    const s = open(dir, { maxBytes: 100 });
    assert.equal(s.full, false);
    for (let i = 0; i < 10; i++) s.append(p('0123456789'));
    assert.equal(s.full, true);
    assert.throws(() => open(dir), /in use by process/);
    s.ack(10);
    assert.equal(s.full, false, 'acked records free the budget');
    s.close();
  });
});

describe('AuditSender over the spool', () => {
  const event = (i: number): AuditEvent => ({
    type: 'statement',
    session: 's1',
    at: 1000 + i,
    text: `select ${i}`,
    durationMs: 1,
  });

  it('sends consecutive batches with their first seq, resends after reconnect, ignores duplicate acks', async () => {
    const dir = tempDir();
    let sender: AuditSender | undefined;
    const spool = open(dir, { onDurable: () => sender?.notifyDurable() });
    sender = new AuditSender({ spool, logger: silentLogger, maxBatch: 3, maxInFlight: 2 });
    for (let i = 1; i <= 7; i++) sender.push(event(i));
    const sent: { seq: number; n: number }[] = [];
    sender.setChannel({
      send: (events, seq) => {
        sent.push({ seq, n: events.length });
        return true;
      },
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent, [
      { seq: 1, n: 3 },
      { seq: 4, n: 3 },
    ]);
    sender.ack(3);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent[2], { seq: 7, n: 1 });
    // tunnel drops before the other acks: everything after 3 is sent again
    sender.setChannel(undefined);
    sent.length = 0;
    sender.setChannel({
      send: (events, seq) => {
        sent.push({ seq, n: events.length });
        return true;
      },
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent, [
      { seq: 4, n: 3 },
      { seq: 7, n: 1 },
    ]);
    sender.ack(6);
    sender.ack(6);
    sender.ack(7);
    assert.equal(sender.queued, 0);
    sender.stop();
    spool.close();
  });

  it('cuts oversized statement text instead of failing', () => {
    const dir = tempDir();
    const spool = open(dir);
    const sender = new AuditSender({ spool, logger: silentLogger, maxTextBytes: 100 });
    sender.push({ ...event(1), text: 'x'.repeat(500_000) } as AuditEvent);
    spool.flush();
    const [rec] = spool.read(1, 1 << 20);
    assert.match(JSON.parse(rec?.payload.toString() ?? '{}').text, /more bytes not recorded/);
    spool.close();
  });
});
