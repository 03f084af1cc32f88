/**
 * Latency percentiles from pgbench's per-transaction log (`-l`), in bounded memory.
 *
 * Log line (pgbench ≥ 13, https://www.postgresql.org/docs/current/pgbench.html "Per-Transaction
 * Logging"): `client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]`
 * where `time` is the transaction's latency in µs. A failed transaction logs `failed` or
 * `serialization`/`deadlock` instead of a number; those are counted, not timed.
 *
 * Values go into a log-linear histogram: exact below 128 µs, then 64 sub-buckets per power of two
 * (relative error ≤ 1/64 ≈ 1.6 %), so a log of any length costs a few KiB.
 */

import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

const SUB_BUCKET_BITS = 6;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Latencies above this (µs, ~1.1 h) land in the last bucket. */
const MAX_US = 2 ** 32 - 1;

export class LatencyHistogram {
  readonly #counts = new Map<number, number>();
  #count = 0;
  #failed = 0;
  #max = 0;

  get count(): number {
    return this.#count;
  }

  get failed(): number {
    return this.#failed;
  }

  record(us: number): void {
    const value = Math.min(Math.max(0, Math.round(us)), MAX_US);
    const bucket = bucketOf(value);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
    this.#count += 1;
    if (value > this.#max) this.#max = value;
  }

  recordFailure(): void {
    this.#failed += 1;
  }

  /** The value (µs) at percentile `p` (0–100); NaN when empty. Upper edge of its bucket. */
  percentile(p: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (const bucket of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(bucket) ?? 0;
      if (seen >= rank) return Math.min(upperEdge(bucket), this.#max);
    }
    return this.#max;
  }
}

/** Bucket index: values < 128 map to themselves; above, (exponent, top 7 bits of the value). */
export function bucketOf(us: number): number {
  if (us < 2 * SUB_BUCKETS) return us;
  const exponent = 31 - Math.clz32(us) - SUB_BUCKET_BITS;
  return exponent * SUB_BUCKETS + Math.floor(us / 2 ** exponent);
}

/** Largest value that maps to `bucket`. */
export function upperEdge(bucket: number): number {
  if (bucket < 2 * SUB_BUCKETS) return bucket;
  const exponent = Math.floor(bucket / SUB_BUCKETS) - 1;
  const sub = bucket - exponent * SUB_BUCKETS;
  return (sub + 1) * 2 ** exponent - 1;
}

/** Parses one log line into the histogram; returns false for a line that is not a record. */
export function recordLogLine(histogram: LatencyHistogram, line: string): boolean {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 6) return false;
  const time = fields[2] as string;
  if (/^\d+$/.test(time)) {
    histogram.record(Number(time));
    return true;
  }
  if (/^[a-z_]+$/.test(time)) {
    histogram.recordFailure();
    return true;
  }
  return false;
}

/**
 * Reads every log file pgbench wrote for `prefix` (`<prefix>.<pid>` and `<prefix>.<pid>.<n>`),
 * one line at a time, into `histogram` (a new one by default), then deletes them.
 */
export async function readPgbenchLogs(
  prefix: string,
  histogram = new LatencyHistogram(),
): Promise<LatencyHistogram> {
  const dir = dirname(prefix);
  const stem = `${basename(prefix)}.`;
  const files = (await readdir(dir)).filter((name) => name.startsWith(stem));
  for (const name of files) {
    const path = join(dir, name);
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    for await (const line of lines) recordLogLine(histogram, line);
    await rm(path, { force: true });
  }
  return histogram;
}
