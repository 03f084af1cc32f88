/**
 * The agent's durable audit spool: append-only segment files of CRC'd, length-prefixed records
 * (record.ts), one agent-wide sequence number per record, deleted only after the broker
 * acknowledged every record in them.
 *
 *   dir/
 *     lock                       pid of the agent using this spool
 *     seg-0000000000000001.spool segments named by their first seq; the newest is "active"
 *     quarantine/                corrupt segments, moved aside (never read again, never counted)
 *
 * A fully acknowledged active segment is replaced only once it holds `rollAckedBytes` (or at
 * close): until then its acked records stay, and after a crash they are sent again, which the
 * broker skips as duplicates.
 *
 * Sequence numbers are agent-wide and monotonic across restarts: the active segment is never
 * deleted while it is the newest file, and an empty spool still holds an empty active segment
 * named by the next seq, so the next number survives every restart.
 *
 * Durability: `append` writes the whole record with one write(2) before returning, so a kill -9
 * of the agent loses nothing `append` accepted. With `fsync: 'always'` it also fdatasyncs before
 * returning (survives a machine crash); with `fsync: 'batch'` (default) one fdatasync covers
 * everything appended in the last `fsyncMs`, so a power loss can lose at most that window. Either
 * way a record is handed to the sender (`read`) only once it is fsync'd, so nothing can be acked
 * and deleted before it is durable here.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Clock, HoopError, type Logger, systemClock, type TimerHandle } from '@hoop/shared';
import {
  decodeRecord,
  encodeRecord,
  FILE_MAGIC,
  RECORD_HEADER_BYTES,
  type SpoolRecord,
  scanSegment,
} from './record.js';

export type FsyncMode = 'always' | 'batch';

export interface SpoolOptions {
  readonly dir: string;
  /** Disk budget in bytes; past it `full` is true and new recorded sessions are refused. */
  readonly maxBytes?: number;
  /** Roll to a new segment past this size. */
  readonly segmentBytes?: number;
  /**
   * A fully acknowledged active segment is replaced by a new one (and deleted) once it holds
   * this much, or when the spool is over its budget. Below it the acked records stay until
   * then: a roll costs three fsyncs and a file created and deleted on the agent's event loop,
   * which on every ack was ~3 per session under `pgbench -C` with recording.
   */
  readonly rollAckedBytes?: number;
  /** Largest payload of one record. */
  readonly maxRecordBytes?: number;
  readonly fsync?: FsyncMode;
  /** Batch window for `fsync: 'batch'`. */
  readonly fsyncMs?: number;
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Called when a corrupt segment was moved aside. */
  readonly onQuarantine?: (info: QuarantineInfo) => void;
  /** Called when more records became durable (readable). */
  readonly onDurable?: () => void;
}

export interface QuarantineInfo {
  readonly file: string;
  readonly movedTo: string;
  readonly reason: string;
  /** Good records before the damage (kept in the quarantined file, not uploaded). */
  readonly goodRecords: number;
}

export const SPOOL_DEFAULTS = {
  maxBytes: 1024 * 1024 * 1024,
  segmentBytes: 4 * 1024 * 1024,
  rollAckedBytes: 1024 * 1024,
  maxRecordBytes: 192 * 1024,
  fsyncMs: 10,
} as const;

interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  /** firstSeq - 1 while empty. */
  lastSeq: number;
  bytes: number;
}

/** Directories locked by spools of this process (the lock file cannot tell those apart). */
const lockedHere = new Set<string>();

const SEGMENT_RE = /^seg-(\d{16})\.spool$/;

function segmentName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.spool`;
}

export class Spool {
  private readonly dir: string;
  private readonly quarantineDir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly rollAckedBytes: number;
  private readonly maxRecordBytes: number;
  private readonly fsyncMode: FsyncMode;
  private readonly fsyncMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** Oldest first; the last one is the active segment. */
  private segments: Segment[] = [];
  private fd: number;
  private nextSeqValue = 1;
  private durable = 0;
  private ackedSeq = 0;
  private syncTimer: TimerHandle | undefined;
  private syncing = false;
  private readonly deferredClose: number[] = [];
  private cursor: { seq: number; segment: number; offset: number } | undefined;
  private closed = false;
  readonly quarantined: QuarantineInfo[] = [];

  constructor(private readonly options: SpoolOptions) {
    this.dir = options.dir;
    this.quarantineDir = join(this.dir, 'quarantine');
    this.maxBytes = options.maxBytes ?? SPOOL_DEFAULTS.maxBytes;
    this.segmentBytes = options.segmentBytes ?? SPOOL_DEFAULTS.segmentBytes;
    this.rollAckedBytes = options.rollAckedBytes ?? SPOOL_DEFAULTS.rollAckedBytes;
    this.maxRecordBytes = options.maxRecordBytes ?? SPOOL_DEFAULTS.maxRecordBytes;
    this.fsyncMode = options.fsync ?? 'batch';
    this.fsyncMs = options.fsyncMs ?? SPOOL_DEFAULTS.fsyncMs;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    if (!(this.maxBytes > 0)) throw new HoopError('USAGE', 'the spool budget must be positive');
    try {
      mkdirSync(this.quarantineDir, { recursive: true, mode: 0o700 });
      this.lock();
      this.fd = this.recover();
    } catch (err) {
      if (err instanceof HoopError) throw err;
      throw new HoopError(
        'USAGE',
        `cannot use the spool directory ${this.dir}: ${(err as Error).message}`,
        {
          hint: 'Set HOOP_SPOOL_DIR to a writable directory only this agent uses.',
        },
      );
    }
  }

  /** The seq the next append gets. */
  get nextSeq(): number {
    return this.nextSeqValue;
  }

  /** Highest seq that is fsync'd. */
  get durableSeq(): number {
    return this.durable;
  }

  get acked(): number {
    return this.ackedSeq;
  }

  /** Records appended and not yet acknowledged (including quarantined gaps never acked). */
  get pending(): number {
    let n = 0;
    for (const s of this.segments)
      n += Math.max(0, s.lastSeq - Math.max(s.firstSeq - 1, this.ackedSeq));
    return n;
  }

  /** Bytes of live segment files (quarantine is not counted). */
  get usedBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.bytes;
    return n;
  }

  get budget(): number {
    return this.maxBytes;
  }

  /** Whether the budget is used up: new recorded sessions must be refused. */
  get full(): boolean {
    return this.usedBytes >= this.maxBytes;
  }

  /**
   * Appends one record and returns its seq. On return the record is written (kill -9 safe);
   * with fsync 'always' it is also on stable storage.
   */
  append(payload: Buffer): number {
    if (this.closed) throw new HoopError('INTERNAL', 'the spool is closed');
    if (payload.length > this.maxRecordBytes) {
      throw new HoopError(
        'INTERNAL',
        `spool record of ${payload.length} bytes exceeds ${this.maxRecordBytes}`,
      );
    }
    let active = this.active();
    if (active.bytes >= this.segmentBytes && active.lastSeq >= active.firstSeq) {
      this.roll();
      active = this.active();
    }
    const seq = this.nextSeqValue;
    const record = encodeRecord(seq, payload);
    let written = 0;
    while (written < record.length) {
      written += writeSync(this.fd, record, written, record.length - written);
    }
    this.nextSeqValue = seq + 1;
    active.lastSeq = seq;
    active.bytes += record.length;
    if (this.fsyncMode === 'always') {
      fdatasyncSync(this.fd);
      this.markDurable(seq);
    } else {
      this.scheduleSync();
    }
    return seq;
  }

  /** fsyncs everything appended so far (e.g. at session end or shutdown). */
  flush(): void {
    if (this.closed) return;
    if (this.syncTimer !== undefined) this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    const upTo = this.nextSeqValue - 1;
    if (upTo <= this.durable) return;
    fdatasyncSync(this.fd);
    this.markDurable(upTo);
  }

  /**
   * Makes everything appended so far durable soon, without blocking: the fsync runs on the
   * thread pool now instead of at the end of the batch window.
   */
  syncSoon(): void {
    if (this.closed || this.syncing) return;
    if (this.syncTimer !== undefined) this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    this.syncNow();
  }

  /**
   * Every record up to and including `seq` is stored by the broker: delete the segments it
   * covers (the active one once it holds `rollAckedBytes`, or the spool is full).
   */
  ack(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = Math.min(seq, this.nextSeqValue - 1);
    if (this.activeAcked() && (this.active().bytes >= this.rollAckedBytes || this.full)) {
      this.roll();
    }
    this.dropAcked();
  }

  /** The active segment holds records, and the broker acknowledged all of them. */
  private activeAcked(): boolean {
    const active = this.active();
    return active.lastSeq >= active.firstSeq && active.lastSeq <= this.ackedSeq;
  }

  /** Deletes the segments before the active one that the broker acknowledged entirely. */
  private dropAcked(): void {
    while (this.segments.length > 1) {
      const oldest = this.segments[0] as Segment;
      if (oldest.lastSeq > this.ackedSeq) break;
      rmSync(oldest.path, { force: true });
      this.segments.shift();
      if (this.cursor !== undefined) this.cursor.segment--;
    }
    if (this.cursor !== undefined && this.cursor.segment < 0) this.cursor = undefined;
  }

  /** Restart reading at the oldest unacknowledged record (after a reconnect or a timeout). */
  rewind(): void {
    this.cursor = undefined;
  }

  /**
   * The next durable records after the read cursor, at most `maxRecords` and about `maxBytes`
   * of payload, with consecutive seqs only (a batch never spans a gap). Advances the cursor.
   */
  read(maxRecords: number, maxBytes: number): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    if (this.cursor === undefined) {
      this.cursor = { seq: this.ackedSeq + 1, segment: 0, offset: FILE_MAGIC.length };
    }
    const cur = this.cursor;
    while (out.length < maxRecords && cur.segment < this.segments.length) {
      const seg = this.segments[cur.segment] as Segment;
      if (cur.offset >= seg.bytes || seg.lastSeq < seg.firstSeq) {
        if (cur.segment === this.segments.length - 1) break;
        cur.segment++;
        cur.offset = FILE_MAGIC.length;
        continue;
      }
      const want = Math.min(
        seg.bytes - cur.offset,
        Math.max(maxBytes - bytes, 0) + RECORD_HEADER_BYTES + this.maxRecordBytes,
      );
      const buf = this.readAt(seg, cur.offset, want);
      let offset = 0;
      let stop = false;
      while (offset < buf.length && out.length < maxRecords) {
        const result = decodeRecord(buf, offset, this.maxRecordBytes);
        if (result.kind === 'partial') break;
        if (result.kind === 'corrupt') {
          this.quarantineLive(cur.segment, `${result.reason} at byte ${cur.offset + offset}`);
          return out;
        }
        const { record } = result;
        if (record.seq > this.durable) {
          stop = true;
          break;
        }
        if (record.seq <= this.ackedSeq || record.seq < cur.seq) {
          offset = result.next;
          continue;
        }
        const last = out[out.length - 1];
        if (last !== undefined && record.seq !== last.seq + 1) {
          stop = true;
          break;
        }
        if (out.length > 0 && bytes + record.payload.length > maxBytes) {
          stop = true;
          break;
        }
        out.push({ seq: record.seq, payload: Buffer.from(record.payload) });
        bytes += record.payload.length;
        offset = result.next;
        cur.seq = record.seq + 1;
      }
      cur.offset += offset;
      if (stop || bytes >= maxBytes) break;
      if (offset === 0) break;
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    // Acked records kept in the active segment (see rollAckedBytes) are not left for the next
    // start to send again.
    if (this.activeAcked()) {
      this.roll();
      this.dropAcked();
    }
    this.closed = true;
    closeSync(this.fd);
    rmSync(join(this.dir, 'lock'), { force: true });
    lockedHere.delete(this.dir);
  }

  // ---- internals ----

  private active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  private readAt(seg: Segment, position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    const fd = openSync(seg.path, 'r');
    try {
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  private markDurable(seq: number): void {
    if (seq <= this.durable) return;
    this.durable = seq;
    this.options.onDurable?.();
  }

  private scheduleSync(): void {
    if (this.syncTimer !== undefined || this.syncing) return;
    this.syncTimer = this.clock.setTimeout(() => {
      this.syncTimer = undefined;
      this.syncNow();
    }, this.fsyncMs);
    this.syncTimer.unref?.();
  }

  private syncNow(): void {
    if (this.closed) return;
    const upTo = this.nextSeqValue - 1;
    if (upTo <= this.durable) return;
    this.syncing = true;
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      for (const fd of this.deferredClose.splice(0)) closeSync(fd);
      if (err) {
        this.logger.error('spool fsync failed', { error: err });
      } else {
        this.markDurable(upTo);
      }
      if (this.nextSeqValue - 1 > this.durable) this.scheduleSync();
    });
  }

  /** Seals the active segment (fsync'd) and starts a new, empty one named by the next seq. */
  private roll(): void {
    fdatasyncSync(this.fd);
    this.markDurable(this.nextSeqValue - 1);
    if (this.syncing) this.deferredClose.push(this.fd);
    else closeSync(this.fd);
    this.fd = this.createSegment(this.nextSeqValue);
  }

  private createSegment(firstSeq: number): number {
    const path = join(this.dir, segmentName(firstSeq));
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, FILE_MAGIC);
    fdatasyncSync(fd);
    this.syncDir();
    this.segments.push({ path, firstSeq, lastSeq: firstSeq - 1, bytes: FILE_MAGIC.length });
    return fd;
  }

  private syncDir(): void {
    const dfd = openSync(this.dir, 'r');
    try {
      fdatasyncSync(dfd);
    } catch {
      // some filesystems refuse fsync on directories; nothing better to do
    } finally {
      closeSync(dfd);
    }
  }

  private lock(): void {
    const path = join(this.dir, 'lock');
    if (lockedHere.has(this.dir)) {
      throw new HoopError(
        'USAGE',
        `the spool directory ${this.dir} is in use by process ${process.pid}`,
        {
          hint: 'Give each agent its own HOOP_SPOOL_DIR.',
        },
      );
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        lockedHere.add(this.dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new HoopError(
          'USAGE',
          `the spool directory ${this.dir} is in use by process ${pid}`,
          {
            hint: 'Give each agent process its own HOOP_SPOOL_DIR.',
          },
        );
      }
      rmSync(path, { force: true });
    }
    throw new HoopError('USAGE', `cannot lock the spool directory ${this.dir}`);
  }

  /** Startup: scan every segment, cut torn tails, quarantine corrupt files, open the newest. */
  private recover(): number {
    const names = readdirSync(this.dir)
      .map((name) => ({ name, m: SEGMENT_RE.exec(name) }))
      .filter((e) => e.m !== null)
      .map((e) => ({ name: e.name, firstSeq: Number(e.m?.[1]) }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
    let next = 1;
    for (const { name, firstSeq } of names) {
      const path = join(this.dir, name);
      const buf = readFileSync(path);
      // Whatever happens to this file, never hand out its seqs again.
      next = Math.max(next, firstSeq);
      const scan = scanSegment(buf, this.maxRecordBytes);
      const wrongSeq = scan.records.find((r, i) => r.seq !== firstSeq + i);
      const reason =
        scan.corrupt ??
        (wrongSeq === undefined
          ? undefined
          : `record seq ${wrongSeq.seq} does not follow the file's first seq ${firstSeq}`);
      if (reason !== undefined) {
        next = Math.max(next, firstSeq + Math.ceil(buf.length / RECORD_HEADER_BYTES));
        this.quarantine(path, name, reason, scan.records.length);
        continue;
      }
      let bytes = buf.length;
      if (scan.tornTail || buf.length < FILE_MAGIC.length) {
        const fd = openSync(path, 'r+');
        try {
          if (buf.length < FILE_MAGIC.length) {
            ftruncateSync(fd, 0);
            writeSync(fd, FILE_MAGIC, 0, FILE_MAGIC.length, 0);
            bytes = FILE_MAGIC.length;
          } else {
            ftruncateSync(fd, scan.goodBytes);
            bytes = scan.goodBytes;
          }
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        this.logger.warn(
          'spool: cut a torn record at the end of a segment (an interrupted write)',
          {
            file: path,
            keptRecords: scan.records.length,
          },
        );
      }
      // Written before a kill -9 but maybe not yet fsync'd: make it durable before reading it.
      const sfd = openSync(path, 'r');
      try {
        fdatasyncSync(sfd);
      } finally {
        closeSync(sfd);
      }
      const lastSeq = firstSeq + scan.records.length - 1;
      next = Math.max(next, lastSeq + 1);
      this.segments.push({ path, firstSeq, lastSeq, bytes });
    }
    this.nextSeqValue = next;
    const newest = this.segments[this.segments.length - 1];
    let fd: number;
    if (newest !== undefined && newest.lastSeq + 1 === next && newest.bytes < this.segmentBytes) {
      fd = openSync(newest.path, 'a');
    } else {
      fd = this.createSegment(next);
    }
    // Everything found on disk was fsync'd at recovery (or before the crash): readable now.
    this.durable = next - 1;
    // Records before the oldest live segment were acknowledged before this start.
    const oldest = this.segments[0];
    this.ackedSeq = oldest === undefined ? next - 1 : oldest.firstSeq - 1;
    if (this.quarantined.length > 0) this.syncDir();
    return fd;
  }

  private quarantine(path: string, name: string, reason: string, goodRecords: number): void {
    const movedTo = join(this.quarantineDir, `${name}.${this.clock.now()}`);
    renameSync(path, movedTo);
    const info: QuarantineInfo = { file: path, movedTo, reason, goodRecords };
    this.quarantined.push(info);
    this.logger.error('spool: quarantined a corrupt segment; the other segments still upload', {
      file: path,
      movedTo,
      reason,
      goodRecords,
    });
    this.options.onQuarantine?.(info);
  }

  /** A live segment turned out corrupt while reading: seal it if active, then move it aside. */
  private quarantineLive(index: number, reason: string): void {
    if (index === this.segments.length - 1) this.roll();
    const seg = this.segments[index] as Segment;
    this.segments.splice(index, 1);
    const name = seg.path.slice(this.dir.length + 1);
    this.quarantine(seg.path, name, reason, 0);
    this.syncDir();
    this.cursor = undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
