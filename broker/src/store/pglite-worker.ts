/**
 * The embedded store's own thread: owns the PGlite instance and runs what the broker's thread
 * asks for (pglite-thread.ts is the other end). PGlite executes synchronously inside its
 * WebAssembly module, so on the broker's thread an audit group commit stalled the tunnel relay
 * for tens of milliseconds; here it only competes for a core.
 *
 * Messages in: `open`, `query` (optionally inside a transaction), `begin`, `end` (commit or
 * roll back), `close`. Every message gets one reply with its `id`: `{ id, ok: true, value }` or
 * `{ id, ok: false, error }` where `error` keeps the driver's SQLSTATE fields.
 */
import { parentPort } from 'node:worker_threads';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { startIdleCollector } from '@hoop/shared';
import { durablePgliteOptions } from './pglite-durable-fs.js';
import { queryInOneRound, textParams } from './pglite-one-round.js';
import {
  type ClientMessage,
  type QueryRequest,
  type SerializedDbError,
  textParsers,
  type WorkerReply,
} from './pglite-protocol.js';

interface OpenTransaction {
  readonly tx: Transaction;
  /** Settles the PGlite transaction callback: true commits, false rolls back. */
  readonly finish: (commit: boolean) => void;
  /** Resolves when PGlite has committed or rolled back. */
  readonly done: Promise<void>;
}

/**
 * PGlite's default 128 MB of shared buffers is WebAssembly memory that stays resident; the
 * broker's tables are small and its writes appends, so a few MB serve them. 16 MB took ~150 MB
 * off an idle broker; 8 MB takes ~11 MiB more (1,000 idle sessions: 152 → 141 MiB) with no
 * measurable change to appending (~16k audit rows/s), verifying or scanning the audit log at
 * 30k or 100k rows (0.73–0.79 / 2.3–2.5 s either way). 4 MB cost verify and export ~5–10 %.
 */
const sharedBuffers = ['-c', 'shared_buffers=8MB'];

/**
 * ANALYZE (the store's maintenance runs it; store/maintenance.ts) keeps its whole sample in
 * memory: 300 × the statistics target rows. For audit_events at PostgreSQL's default of 100,
 * that is 30,000 rows with their JSON, and PGlite's WebAssembly memory, which never shrinks, grew
 * by 33 MiB (20.9 → 54.0 MiB after analyzing 50k rows) and stayed there. At 10 (PostgreSQL's
 * default until 8.4) it grows by 2.6 MiB. The store's queries look rows up by key, id range or
 * session, for which coarse statistics plan the same.
 */
const statisticsTarget = ['-c', 'default_statistics_target=10'];

/** What the store's PostgreSQL starts with, besides PGlite's own parameters. */
const startSettings = [...sharedBuffers, ...statisticsTarget];

/**
 * PGlite copies its table of result parsers into a new object for every query, and once started
 * that table holds a parser for each of the ~290 array types in pg_type: measured 173 µs per
 * `select 1` with it, 62 µs without, more than a small query's own work. The store's columns are
 * base types (arrays are jsonb), so only the base types' parsers and those of arrays of them are
 * kept; a result of any other type arrives as its text, as PGlite gives a type it has no parser
 * for.
 */
async function trimParsers(pglite: PGlite): Promise<void> {
  const { rows } = await pglite.query<{ oid: number; elem: number }>(
    `select oid::int as oid, typelem::int as elem from pg_type where typcategory = 'A'`,
  );
  const elementOf = new Map(rows.map((r) => [String(r.oid), String(r.elem)]));
  const all = pglite.parsers;
  const kept: typeof all = {};
  for (const key of Object.keys(all)) {
    const element = elementOf.get(key);
    if (element === undefined || (all[element] !== undefined && !elementOf.has(element))) {
      kept[key] = all[key] as (typeof all)[string];
    }
  }
  pglite.parsers = kept;
}

let db: PGlite | undefined;
const transactions = new Map<number, OpenTransaction>();
let nextTx = 1;

function serializeError(err: unknown): SerializedDbError {
  if (!(err instanceof Error)) return { message: String(err) };
  const fields = err as unknown as Record<string, unknown>;
  const out: SerializedDbError = { message: err.message, name: err.name };
  for (const key of ['code', 'constraint', 'detail', 'severity', 'table', 'column'] as const) {
    const value = fields[key];
    if (typeof value === 'string') out[key] = value;
  }
  return out;
}

function opened(): PGlite {
  if (db === undefined) throw new Error('the embedded store is not open');
  return db;
}

async function runQuery(request: QueryRequest): Promise<unknown> {
  const options = {
    rowMode: request.rowMode,
    ...(request.textTypes === undefined ? {} : { parsers: textParsers(request.textTypes) }),
  };
  const values = textParams(request.params);
  if (request.tx === undefined) {
    if (values !== undefined) return queryInOneRound(opened(), request.sql, values, options, false);
    return opened().query(request.sql, request.params, options);
  }
  const open = transactions.get(request.tx);
  if (open === undefined) throw new Error(`transaction ${request.tx} is not open`);
  if (values !== undefined) return queryInOneRound(opened(), request.sql, values, options, true);
  return open.tx.query(request.sql, request.params, options);
}

async function begin(): Promise<number> {
  const id = nextTx++;
  let started!: () => void;
  const ready = new Promise<void>((resolve) => {
    started = resolve;
  });
  let finish!: (commit: boolean) => void;
  const outcome = new Promise<boolean>((resolve) => {
    finish = resolve;
  });
  const done = opened()
    .transaction(async (tx) => {
      transactions.set(id, { tx, finish, done: Promise.resolve() });
      started();
      if (!(await outcome)) await tx.rollback();
    })
    .then(() => undefined);
  // A failed BEGIN rejects `done` before `started`: surface it instead of waiting forever.
  await Promise.race([ready, done]);
  const open = transactions.get(id);
  if (open === undefined) throw new Error('could not begin a transaction');
  transactions.set(id, { ...open, done });
  return id;
}

async function end(tx: number, commit: boolean): Promise<void> {
  const open = transactions.get(tx);
  if (open === undefined) throw new Error(`transaction ${tx} is not open`);
  transactions.delete(tx);
  open.finish(commit);
  await open.done;
}

async function handle(message: ClientMessage): Promise<unknown> {
  switch (message.op) {
    case 'open':
      db = await PGlite.create(
        message.dataDir === undefined
          ? { startParams: [...PGlite.defaultStartParams, ...startSettings] }
          : durablePgliteOptions(message.dataDir, startSettings),
      );
      await trimParsers(db);
      return null;
    case 'query':
      return runQuery(message);
    case 'begin':
      return begin();
    case 'end':
      return end(message.tx, message.commit);
    case 'close':
      idleCollector.stop();
      for (const open of transactions.values()) open.finish(false);
      transactions.clear();
      if (db !== undefined && !db.closed) await db.close();
      return null;
  }
}

const port = parentPort;
if (port === null) throw new Error('pglite-worker.js runs as a worker thread');
/**
 * This thread's own heap (PGlite's JavaScript, query results on their way out) gives back the
 * garbage of a burst once the store is idle, like the broker's main thread (IdleCollector).
 */
const idleCollector = startIdleCollector();
port.on('message', (message: ClientMessage) => {
  handle(message).then(
    (value) => port.postMessage({ id: message.id, ok: true, value } satisfies WorkerReply),
    (err: unknown) =>
      port.postMessage({
        id: message.id,
        ok: false,
        error: serializeError(err),
      } satisfies WorkerReply),
  );
});
