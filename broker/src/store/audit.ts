/**
 * The audit log: one append-only, hash-chained table (`audit_events`) for everything — agents'
 * session events and the broker's own (logins, grants, admin changes, retention anchors).
 *
 * Chain: rows in id order; each row stores the previous row's hash and its own,
 *
 *   hash = sha256_hex(prev_hash || canonical JSON of {sessionId, agentId, seq, type, at,
 *                                                      receivedAt, data})
 *
 * with canonical JSON = keys sorted at every level, no whitespace, timestamps as ISO-8601 in
 * ms. The first row's prev_hash is GENESIS_HASH (64 zeros), or — after retention deleted the
 * oldest rows — the `continuesFrom` hash that an `audit-anchor` row (itself chained) recorded.
 *
 * Appends are serialized: one in-process queue per database, and inside the transaction
 * `pg_advisory_xact_lock(AUDIT_LOCK_KEY)`, so several brokers sharing a PostgreSQL never fork
 * the chain. Agent events are idempotent on (session, seq): a redelivered event is skipped
 * (it is already in the chain) and still counts as stored.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent } from '@hoop/shared';
import { and, asc, desc, eq, gt, gte, inArray, isNotNull, lte, or, sql } from 'drizzle-orm';
import { guard, isViolation, nowOf, resultRows, type StoreContext } from './context.js';
import type { Db } from './database.js';
import { SqlState } from './db-errors.js';
import { auditEvents, sessions, users } from './schema.js';

export const GENESIS_HASH = '0'.repeat(64);
/** 'hoop' in ASCII: the advisory lock every broker takes to append. */
export const AUDIT_LOCK_KEY = 0x686f6f70;
export const ANCHOR_TYPE = 'audit-anchor';

export interface StoredAuditEvent {
  readonly id: number;
  readonly receivedAt: string;
  readonly event: AuditEvent;
}

/** One row as the API and `hoop audit list|export` show it. */
export interface AuditRecord {
  readonly id: number;
  readonly sessionId: string | null;
  readonly agentId: string | null;
  readonly seq: number | null;
  readonly type: string;
  readonly at: string;
  readonly receivedAt: string;
  readonly data: unknown;
  readonly prevHash: string | null;
  readonly hash: string | null;
  /** Joined from the session, when there is one. */
  readonly connection?: string | null;
  readonly user?: string | null;
}

export interface ChainInput {
  readonly sessionId: string | null;
  readonly agentId: string | null;
  readonly seq: number | null;
  readonly type: string;
  readonly at: Date;
  readonly data: unknown;
}

// ---- canonical form and hashing ----

/**
 * JSON with keys sorted at every level; `undefined` members dropped as JSON.stringify does.
 * Built by concatenation (no intermediate arrays of entries): it runs for every audit row the
 * broker stores and verifies.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined ? 'null' : canonicalJson(item);
    }
    return `${out}]`;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  const record = value as Record<string, unknown>;
  // Default sort: UTF-16 code unit order, the same as comparing the keys with < and >.
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined || typeof item === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
    first = false;
  }
  return `${out}}`;
}

export interface HashedContent {
  readonly sessionId: string | null;
  readonly agentId: string | null;
  readonly seq: number | null;
  readonly type: string;
  readonly at: Date;
  readonly receivedAt: Date;
  readonly data: unknown;
}

export function rowHash(prevHash: string, row: HashedContent): string {
  const content = canonicalJson({
    sessionId: row.sessionId,
    agentId: row.agentId,
    seq: row.seq,
    type: row.type,
    at: row.at.toISOString(),
    receivedAt: row.receivedAt.toISOString(),
    data: row.data,
  });
  return createHash('sha256').update(prevHash).update(content).digest('hex');
}

/**
 * rowHash of a row about to be stored, given its data's canonical JSON (`canonicalJson(data)`,
 * which is also what the row stores): the same content string rowHash builds, with the
 * wrapper's keys written in their sorted order, so the data is serialized once instead of
 * being normalized, canonicalized and serialized again for the INSERT.
 * canonicalJson(data) equals canonicalJson of what jsonb gives back for it (undefined members
 * dropped, -0 → 0, toJSON applied), so `verifyChain` recomputes the same hash from the row.
 */
export function storedRowHash(
  prevHash: string,
  row: Pick<AuditRecord, 'sessionId' | 'agentId' | 'seq' | 'type' | 'at' | 'receivedAt'>,
  dataJson: string,
): string {
  const content =
    `{"agentId":${JSON.stringify(row.agentId)},"at":${JSON.stringify(row.at)},"data":${dataJson},` +
    `"receivedAt":${JSON.stringify(row.receivedAt)},"seq":${JSON.stringify(row.seq)},` +
    `"sessionId":${JSON.stringify(row.sessionId)},"type":${JSON.stringify(row.type)}}`;
  return createHash('sha256').update(prevHash).update(content).digest('hex');
}

// ---- serialized appends ----

const queues = new WeakMap<Db, Promise<unknown>>();

/** Runs `fn` after every earlier append on this database (in this process) has finished. */
function serialized<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(db) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  queues.set(
    db,
    run.catch(() => {}),
  );
  return run;
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * Appends rows to the chain in order, skipping rows whose (session, seq) is already stored.
 * Returns the rows appended and the duplicates skipped.
 *
 * Redelivered rows are rare (an agent resends only what it saw no ack for), so the append first
 * assumes none: one INSERT, which fails as a whole on a stored (session, seq). Only then is the
 * append redone with a lookup of what is stored. On the embedded store (`ctx.exclusive`: this
 * process is the only writer, appends are serialized here) the chain lock is skipped, the chain
 * head is kept in memory, and a group that fits one INSERT needs no transaction around it: that
 * one statement is the whole append.
 */
export function appendChained(
  ctx: StoreContext,
  rows: readonly ChainInput[],
): Promise<{ stored: number; duplicates: number }> {
  if (rows.length === 0) return Promise.resolve({ stored: 0, duplicates: 0 });
  return guard('append audit events', () =>
    serialized(ctx.db, async () => {
      const oneStatement = ctx.exclusive === true && rows.length <= APPEND_CHUNK_ROWS;
      try {
        return await inTransaction(
          ctx,
          (tx) => appendInTx(ctx, tx, rows, GENESIS_HASH, true),
          oneStatement,
        );
      } catch (err) {
        if (!(err instanceof RedeliveredRows)) throw err;
      }
      return inTransaction(ctx, (tx) => appendInTx(ctx, tx, rows, GENESIS_HASH, false));
    }),
  );
}

/** Thrown inside an optimistic append that met a stored (session, seq): rolls it back. */
class RedeliveredRows extends Error {}

/** The chain head (last row's hash) of an exclusive store, known after its first append. */
const heads = new WeakMap<Db, string>();

/**
 * Runs `fn` in a transaction (or, with `bare`, on the database: for an exclusive store's append
 * that is a single statement) and keeps the cached chain head in step: `fn` returns the new head,
 * which is remembered once it is committed; any failure forgets it (read again next time).
 */
async function inTransaction<T extends { head: string | undefined }>(
  ctx: StoreContext,
  fn: (tx: Tx) => Promise<T>,
  bare = false,
): Promise<T> {
  try {
    const result = bare
      ? await fn(ctx.db as unknown as Tx)
      : await ctx.db.transaction((tx) => fn(tx as unknown as Tx));
    if (ctx.exclusive === true && result.head !== undefined) heads.set(ctx.db, result.head);
    return result;
  } catch (err) {
    heads.delete(ctx.db);
    throw err;
  }
}

/** The hash the next row chains from, read under the chain lock (or cached, see heads). */
async function chainHead(ctx: StoreContext, tx: Tx, startPrev: string): Promise<string> {
  if (ctx.exclusive === true) {
    const cached = heads.get(ctx.db);
    if (cached !== undefined) return cached;
  } else {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`);
  }
  const [last] = await tx
    .select({ hash: auditEvents.hash })
    .from(auditEvents)
    .orderBy(desc(auditEvents.id))
    .limit(1);
  return last?.hash ?? startPrev;
}

/**
 * The append itself; the caller holds a transaction (see inTransaction). Also used by the
 * retention sweep. Returns the new chain head (undefined when nothing was appended).
 */
export async function appendInTx(
  ctx: StoreContext,
  tx: Tx,
  rows: readonly ChainInput[],
  /** prev_hash of the first row when the table is empty (a sweep that deleted every row). */
  startPrev: string = GENESIS_HASH,
  /** Assume no row is stored yet: a unique violation throws RedeliveredRows, no lookup first. */
  optimistic = false,
): Promise<{ stored: number; duplicates: number; head: string | undefined }> {
  let prev = await chainHead(ctx, tx, startPrev);
  const seen = optimistic ? new Set<string>() : await storedKeys(tx, rows);
  // Redelivery: drop what is stored already (and repeats inside this batch).
  const fresh: ChainInput[] = [];
  for (const r of rows) {
    if (r.sessionId !== null && r.seq !== null) {
      const key = `${r.sessionId}\u0000${r.seq}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    fresh.push(r);
  }
  const duplicates = rows.length - fresh.length;
  if (fresh.length === 0) return { stored: 0, duplicates, head: undefined };
  const receivedAt = nowOf(ctx);
  const received = receivedAt.toISOString();
  const values: RecordsetRow[] = [];
  for (const r of fresh) {
    // Hashing a large group takes tens of ms; the broker's relay shares this event loop, so
    // let it run between slices instead of stalling every session for the whole group.
    if (values.length > 0 && values.length % HASH_SLICE_ROWS === 0) await yieldToEventLoop();
    const data = canonicalJson(r.data);
    const at = r.at.toISOString();
    const hash = storedRowHash(prev, { ...r, at, receivedAt: received }, data);
    values.push({
      session_id: r.sessionId,
      agent_id: r.agentId,
      seq: r.seq,
      type: r.type,
      at,
      received_at: received,
      data,
      prev_hash: prev,
      hash,
    });
    prev = hash;
  }
  for (let i = 0; i < values.length; i += APPEND_CHUNK_ROWS) {
    const chunk = values.slice(i, i + APPEND_CHUNK_ROWS);
    let inserted: InsertSummary;
    try {
      inserted = await insertRecordset(tx, chunk);
    } catch (err) {
      if (optimistic && isViolation(err, SqlState.uniqueViolation)) throw new RedeliveredRows();
      throw err;
    }
    if (inserted.rows !== chunk.length) throw new Error('audit rows were not all inserted');
    // The chain relies on ids following the array's order; refuse (roll back) if they do not.
    if (inserted.hashesById !== hashesDigest(chunk)) {
      throw new Error('audit rows were not numbered in insertion order');
    }
  }
  return { stored: fresh.length, duplicates, head: prev };
}

/** Rows per INSERT: one jsonb parameter each, so a chunk is one statement the store parses once. */
const APPEND_CHUNK_ROWS = 500;

/** Rows hashed between two turns of the event loop (~1 ms of work). */
const HASH_SLICE_ROWS = 100;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One audit row as `jsonb_to_recordset` reads it (snake_case, timestamps as ISO-8601). */
interface RecordsetRow {
  readonly session_id: string | null;
  readonly agent_id: string | null;
  readonly seq: number | null;
  readonly type: string;
  readonly at: string;
  readonly received_at: string;
  /** The data as JSON text (canonical), written into the document as it is. */
  readonly data: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/** What one INSERT reports back: its row count, and its rows' hashes in id order, digested. */
interface InsertSummary {
  readonly rows: number;
  readonly hashesById: string;
}

/** md5 of the rows' hashes concatenated in array order (what InsertSummary.hashesById must be). */
function hashesDigest(rows: readonly RecordsetRow[]): string {
  const md5 = createHash('md5');
  for (const r of rows) md5.update(r.hash);
  return md5.digest('hex');
}

/**
 * Inserts rows passed as ONE jsonb parameter. A multi-row VALUES list costs the driver and the
 * server one parameter per column per row (2,000 for 200 rows), which on the embedded store made
 * each appended event cost a few hundred µs of the broker's event loop; one document is parsed
 * once. It answers with one summary row instead of every inserted row (returning 500 rows cost
 * the embedded store about as much as inserting them): the count, and a digest of the hashes in
 * id order, which the caller compares with the array's order.
 */
async function insertRecordset(tx: Tx, rows: readonly RecordsetRow[]): Promise<InsertSummary> {
  const result = await tx.execute(sql`
    with inserted as (
      insert into audit_events (session_id, agent_id, seq, type, at, received_at, data, prev_hash, hash)
      select r.session_id, r.agent_id, r.seq, r.type, r.at, r.received_at, r.data, r.prev_hash, r.hash
      from rows from (
        jsonb_to_recordset(${recordsetJson(rows)}::jsonb)
          as (session_id text, agent_id text, seq bigint, type text, at timestamptz,
              received_at timestamptz, data jsonb, prev_hash text, hash text)
      ) with ordinality
        as r(session_id, agent_id, seq, type, at, received_at, data, prev_hash, hash, ord)
      order by r.ord
      returning id, hash
    )
    select count(*)::int as rows, md5(string_agg(hash, '' order by id)) as digest from inserted`);
  const [summary] = resultRows<{ rows: number | string; digest: string | null }>(result);
  return { rows: Number(summary?.rows ?? 0), hashesById: summary?.digest ?? '' };
}

/** The rows as one JSON array for jsonb_to_recordset; each row's data is already JSON text. */
function recordsetJson(rows: readonly RecordsetRow[]): string {
  let out = '[';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as RecordsetRow;
    out +=
      `${i > 0 ? ',' : ''}{"session_id":${JSON.stringify(r.session_id)},` +
      `"agent_id":${JSON.stringify(r.agent_id)},"seq":${JSON.stringify(r.seq)},` +
      `"type":${JSON.stringify(r.type)},"at":${JSON.stringify(r.at)},` +
      `"received_at":${JSON.stringify(r.received_at)},"data":${r.data},` +
      `"prev_hash":${JSON.stringify(r.prev_hash)},"hash":${JSON.stringify(r.hash)}}`;
  }
  return `${out}]`;
}

/**
 * The (session, seq) keys of `rows` already stored, as `session\0seq`. Looks up one seq range
 * over the batch's sessions (an index range scan on (session_id, seq)) rather than a list of
 * every seq, which made the store plan a scan per value.
 */
async function storedKeys(tx: Tx, rows: readonly ChainInput[]): Promise<Set<string>> {
  const seen = new Set<string>();
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  const sessionIds = new Set<string>();
  for (const r of rows) {
    if (r.sessionId === null || r.seq === null) continue;
    sessionIds.add(r.sessionId);
    if (r.seq < lo) lo = r.seq;
    if (r.seq > hi) hi = r.seq;
  }
  if (sessionIds.size === 0) return seen;
  const existing = await tx
    .select({ sessionId: auditEvents.sessionId, seq: auditEvents.seq })
    .from(auditEvents)
    .where(
      and(
        inArray(auditEvents.sessionId, [...sessionIds]),
        gte(auditEvents.seq, lo),
        lte(auditEvents.seq, hi),
      ),
    );
  for (const e of existing) seen.add(`${e.sessionId}\u0000${e.seq}`);
  return seen;
}

// ---- agent events ----

/**
 * Appends an agent's events (event i has seq `seq + i` when `seq` is given); events naming a
 * session this agent did not serve are dropped and counted as rejected.
 */
export async function appendAuditEvents(
  ctx: StoreContext,
  agentId: string,
  events: readonly AuditEvent[],
  seq?: number,
): Promise<{ stored: number; rejected: number; duplicates: number }> {
  if (events.length === 0) return { stored: 0, rejected: 0, duplicates: 0 };
  const ids = [...new Set(events.map((e) => e.session))];
  const owned = await guard('check audit sessions', () =>
    ctx.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(inArray(sessions.id, ids), eq(sessions.agentId, agentId))),
  );
  const allowed = new Set(owned.map((r) => r.id));
  const rows: ChainInput[] = [];
  events.forEach((e, i) => {
    if (!allowed.has(e.session)) return;
    rows.push({
      sessionId: e.session,
      agentId,
      seq: seq === undefined ? null : seq + i,
      type: e.type,
      at: new Date(Number.isFinite(e.at) ? e.at : 0),
      data: e,
    });
  });
  const { stored, duplicates } = await appendChained(ctx, rows);
  return { stored, rejected: events.length - rows.length, duplicates };
}

export async function listSessionEvents(
  ctx: StoreContext,
  sessionId: string,
  limit = 10_000,
): Promise<StoredAuditEvent[]> {
  return guard('list session events', async () => {
    const rows = await ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.sessionId, sessionId))
      .orderBy(asc(auditEvents.seq), asc(auditEvents.id))
      .limit(limit);
    return rows.map((r) => ({
      id: r.id,
      receivedAt: r.receivedAt.toISOString(),
      event: r.data as AuditEvent,
    }));
  });
}

// ---- reading ----

export interface ListAuditOptions {
  /** Only rows at or after this time. */
  readonly since?: Date;
  readonly connection?: string;
  readonly user?: string;
  /** Only rows with id greater than this (paging). */
  readonly afterId?: number;
  readonly limit?: number;
}

export async function listAudit(
  ctx: StoreContext,
  options: ListAuditOptions = {},
): Promise<AuditRecord[]> {
  return guard('list audit events', async () => {
    const conditions = [];
    if (options.since !== undefined) conditions.push(gte(auditEvents.at, options.since));
    if (options.afterId !== undefined) conditions.push(gt(auditEvents.id, options.afterId));
    if (options.connection !== undefined) {
      conditions.push(
        or(
          eq(sessions.connectionName, options.connection),
          sql`${auditEvents.data}->>'connection' = ${options.connection}`,
          sql`${auditEvents.data}->>'subject' = ${options.connection}`,
        ),
      );
    }
    if (options.user !== undefined) {
      conditions.push(
        or(eq(users.name, options.user), sql`${auditEvents.data}->>'actor' = ${options.user}`),
      );
    }
    const rows = await ctx.db
      .select({
        row: auditEvents,
        connection: sessions.connectionName,
        user: users.name,
      })
      .from(auditEvents)
      .leftJoin(sessions, eq(sessions.id, auditEvents.sessionId))
      .leftJoin(users, eq(users.id, sessions.userId))
      .where(conditions.length === 0 ? undefined : and(...conditions))
      .orderBy(asc(auditEvents.id))
      .limit(Math.max(1, Math.min(options.limit ?? 1000, 10_000)));
    return rows.map((r) => ({ ...toRecord(r.row), connection: r.connection, user: r.user }));
  });
}

function toRecord(r: typeof auditEvents.$inferSelect): AuditRecord {
  return {
    id: r.id,
    sessionId: r.sessionId,
    agentId: r.agentId,
    seq: r.seq,
    type: r.type,
    at: r.at.toISOString(),
    receivedAt: r.receivedAt.toISOString(),
    data: r.data,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

/** Every row in id order, a page at a time (for export and verify); memory stays bounded. */
export async function* scanAudit(
  ctx: StoreContext,
  pageSize = 1000,
): AsyncGenerator<typeof auditEvents.$inferSelect> {
  let after = 0;
  for (;;) {
    const page = await guard('read audit events', () =>
      ctx.db
        .select()
        .from(auditEvents)
        .where(gt(auditEvents.id, after))
        .orderBy(asc(auditEvents.id))
        .limit(pageSize),
    );
    for (const row of page) yield row;
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) return;
    after = last.id;
  }
}

export function exportRecord(r: typeof auditEvents.$inferSelect): AuditRecord {
  return toRecord(r);
}

// ---- verification ----

export type ChainProblemKind = 'edited' | 'broken-link' | 'unchained' | 'bad-start';

export interface ChainProblem {
  readonly id: number;
  readonly kind: ChainProblemKind;
  readonly message: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly rows: number;
  readonly firstId: number | null;
  /** The last row: keep its hash somewhere else to also detect deletion of the newest rows. */
  readonly head: { id: number; hash: string | null } | null;
  /** Set when retention deleted older rows: the hash the oldest remaining row continues from. */
  readonly anchoredFrom: string | null;
  readonly problems: ChainProblem[];
}

/** Walks the whole chain and names every row that was edited, deleted around, or reordered. */
export async function verifyAudit(ctx: StoreContext, maxProblems = 100): Promise<VerifyResult> {
  const anchors = await guard('read audit anchors', () =>
    ctx.db
      .select({ data: auditEvents.data })
      .from(auditEvents)
      .where(eq(auditEvents.type, ANCHOR_TYPE)),
  );
  const continuations = new Set(
    anchors
      .map((a) => (a.data as { continuesFrom?: unknown }).continuesFrom)
      .filter((h): h is string => typeof h === 'string'),
  );
  const problems: ChainProblem[] = [];
  const report = (p: ChainProblem) => {
    if (problems.length < maxProblems) problems.push(p);
  };
  let rows = 0;
  let firstId: number | null = null;
  let anchoredFrom: string | null = null;
  let previous: { id: number; hash: string | null } | null = null;
  for await (const row of scanAudit(ctx)) {
    rows++;
    if (row.hash === null || row.prevHash === null) {
      report({
        id: row.id,
        kind: 'unchained',
        message: `row ${row.id} has no hash (written outside the chain)`,
      });
      previous = { id: row.id, hash: row.hash };
      continue;
    }
    if (previous === null) {
      firstId = row.id;
      if (row.prevHash !== GENESIS_HASH) {
        if (continuations.has(row.prevHash)) anchoredFrom = row.prevHash;
        else
          report({
            id: row.id,
            kind: 'bad-start',
            message: `row ${row.id} is the oldest row but does not start the chain and no retention anchor continues from its prev_hash: older rows were deleted`,
          });
      }
    } else if (row.prevHash !== previous.hash) {
      report({
        id: row.id,
        kind: 'broken-link',
        message:
          row.id === previous.id + 1
            ? `row ${row.id} does not follow row ${previous.id}: row ${previous.id} was edited and re-hashed, or rows were reordered`
            : `row ${row.id} does not follow row ${previous.id}: rows between them were deleted (ids ${previous.id + 1}..${row.id - 1} are missing), or reordered`,
      });
    }
    const expected = rowHash(row.prevHash, row);
    if (expected !== row.hash) {
      report({
        id: row.id,
        kind: 'edited',
        message: `row ${row.id} (${row.type}${row.sessionId === null ? '' : `, session ${row.sessionId}`}${row.seq === null ? '' : ` seq ${row.seq}`}) was edited: its content does not match its hash`,
      });
    }
    previous = { id: row.id, hash: row.hash };
  }
  return { ok: problems.length === 0, rows, firstId, head: previous, anchoredFrom, problems };
}

// ---- retention ----

/**
 * Deletes the rows older than `before` (a prefix of the chain, by id) and appends an anchor row
 * stating the hash the oldest remaining row continues from, in one transaction under the chain
 * lock. Returns how many rows were deleted.
 */
export function sweepAudit(ctx: StoreContext, before: Date): Promise<{ deleted: number }> {
  return guard('sweep audit events', () =>
    serialized(ctx.db, async () => {
      const { deleted } = await inTransaction(ctx, async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`);
        // The newest row older than the cutoff: it and everything before it go.
        const [cut] = await tx
          .select({ id: auditEvents.id, hash: auditEvents.hash })
          .from(auditEvents)
          .where(and(lte(auditEvents.receivedAt, before), isNotNull(auditEvents.hash)))
          .orderBy(desc(auditEvents.id))
          .limit(1);
        if (cut === undefined || cut.hash === null) return { deleted: 0, head: undefined };
        const deleted = await tx
          .delete(auditEvents)
          .where(lte(auditEvents.id, cut.id))
          .returning({ id: auditEvents.id });
        const { head } = await appendInTx(
          ctx,
          tx,
          [
            {
              sessionId: null,
              agentId: null,
              seq: null,
              type: ANCHOR_TYPE,
              at: nowOf(ctx),
              data: {
                type: ANCHOR_TYPE,
                continuesFrom: cut.hash,
                deletedThroughId: cut.id,
                deletedRows: deleted.length,
                before: before.toISOString(),
              },
            },
          ],
          cut.hash,
        );
        return { deleted: deleted.length, head };
      });
      return { deleted };
    }),
  );
}
