/**
 * Resolves result columns to their source (schema.table.column) for masking by column. The
 * RowDescription gives each field's table OID and attribute number; names come from the
 * target's catalog over a **side connection**: one extra connection per session, opened lazily
 * the first time a column-masked session sees a table OID, logged in with the same credential.
 * A side connection answers while the session's own connection is busy streaming the very
 * result being described (the session's connection cannot run a query mid-result, and pausing
 * to run one between commands would reorder what the client sees). Answers are cached per
 * target for `cacheMs`, so a busy connection asks once per table.
 *
 * Limits: a table created in the client's still-open transaction is invisible to the side
 * connection and is treated as having no masked column (its name cannot be a masked one unless
 * the masked table was dropped and recreated in that same transaction).
 *
 * The cache is shared by the sessions of one target identity (host, port, database, user: the
 * same credential, so the same catalog view), so a new session on a busy connection does not
 * open a side connection to ask what the previous one just learned (CatalogCaches).
 */
import type { Socket } from 'node:net';
import { type Clock, type ConnectionTarget, HoopError, type Logger } from '@hoop/shared';
import { authenticateToTarget } from './auth.js';
import { type DialOptions, dialTarget } from './dial.js';
import { BackendCode, ErrorField } from './messages.js';
import { decodeServerMessage } from './protocol.js';
import { PacketReader } from './reader.js';
import { StreamSource } from './source.js';
import { targetStartupParameters } from './startup.js';
import { encodeMessage, startupMessage, terminate } from './writer.js';

export interface CatalogOptions {
  readonly target: ConnectionTarget;
  readonly password: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly connectTimeoutMs: number;
  readonly tlsOptions: DialOptions['tlsOptions'];
  readonly maxScramIterations: number;
  /** Longest a lookup (including connecting) may take. */
  readonly timeoutMs: number;
  /** How long a table's column names are trusted. */
  readonly cacheMs: number;
  /** Answers shared with the other sessions of this target (default: this session's own). */
  readonly cache?: Map<number, CatalogEntry>;
}

/** Table OIDs a per-target cache holds at most; past it, it starts over. */
const MAX_SHARED_ENTRIES = 10_000;

/** One catalog cache per target identity, for every session of an engine. */
export class CatalogCaches {
  private readonly caches = new Map<string, Map<number, CatalogEntry>>();

  for(target: ConnectionTarget): Map<number, CatalogEntry> {
    const key = JSON.stringify([target.host, target.port, target.database, target.user]);
    let cache = this.caches.get(key);
    if (cache === undefined || cache.size > MAX_SHARED_ENTRIES) {
      cache = new Map();
      this.caches.set(key, cache);
    }
    return cache;
  }
}

export interface CatalogEntry {
  readonly at: number;
  /** attnum → schema.table.column */
  readonly columns: ReadonlyMap<number, string>;
  /**
   * For a view (or materialized view): every base column (schema.table.column) its definition
   * reads, from pg_depend on its rewrite rule. PostgreSQL reports the view, not the base table,
   * as a result column's origin, and which view column carries which base column is not in the
   * catalog; masking treats every column of a view that reads a masked column as masked.
   */
  readonly viewSources: readonly string[];
}

interface SideConnection {
  readonly socket: Socket;
  readonly source: StreamSource;
}

export class Catalog {
  private readonly options: CatalogOptions;
  private readonly cache: Map<number, CatalogEntry>;
  private connection: Promise<SideConnection> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();

  constructor(options: CatalogOptions) {
    this.options = options;
    this.cache = options.cache ?? new Map();
    const onAbort = (): void => this.abort.abort(options.signal.reason);
    options.signal.addEventListener('abort', onAbort, { once: true });
  }

  /** Table OIDs among `oids` whose names are not (freshly) cached. */
  missing(oids: Iterable<number>): number[] {
    const now = this.options.clock.now();
    const out = new Set<number>();
    for (const oid of oids) {
      if (oid === 0) continue;
      const entry = this.cache.get(oid);
      if (entry === undefined || now - entry.at > this.options.cacheMs) out.add(oid);
    }
    return [...out];
  }

  /** The cached source of a column, if known. */
  source(tableOid: number, attnum: number): string | undefined {
    return this.cache.get(tableOid)?.columns.get(attnum);
  }

  /** Base columns a view reads (empty for tables and unknown relations). */
  viewSources(tableOid: number): readonly string[] {
    return this.cache.get(tableOid)?.viewSources ?? [];
  }

  /** Loads the column names of `oids` (one query, serialized with other lookups). */
  load(oids: readonly number[]): Promise<void> {
    const run = this.chain.then(() => this.lookup(oids));
    this.chain = run.catch(() => {});
    return run;
  }

  close(): void {
    this.abort.abort();
    void this.connection?.then(
      ({ socket }) => {
        if (!socket.destroyed) socket.end(terminate());
        socket.destroy();
      },
      () => {},
    );
  }

  private async lookup(oids: readonly number[]): Promise<void> {
    const list = oids.filter((o) => Number.isSafeInteger(o) && o > 0);
    if (list.length === 0) return;
    const sql =
      'select a.attrelid::int8, a.attnum, n.nspname, c.relname, a.attname' +
      ' from pg_catalog.pg_attribute a' +
      ' join pg_catalog.pg_class c on c.oid = a.attrelid' +
      ' join pg_catalog.pg_namespace n on n.oid = c.relnamespace' +
      ` where a.attrelid in (${list.join(',')}) and a.attnum > 0`;
    // For views: every column their rewrite rules depend on, through views over views (a
    // recursive walk of pg_depend; UNION ends cycles).
    const rule = "d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = r.oid";
    const viewSql =
      'with recursive deps(view_oid, ref_oid, ref_att) as (' +
      ` select r.ev_class, d.refobjid, d.refobjsubid from pg_catalog.pg_rewrite r join pg_catalog.pg_depend d on ${rule}` +
      `  where r.ev_class in (${list.join(',')}) and d.refobjsubid > 0 and d.refobjid <> r.ev_class` +
      ' union' +
      ` select deps.view_oid, d.refobjid, d.refobjsubid from deps join pg_catalog.pg_rewrite r on r.ev_class = deps.ref_oid join pg_catalog.pg_depend d on ${rule}` +
      '  where d.refobjsubid > 0 and d.refobjid <> r.ev_class)' +
      ' select deps.view_oid::int8, bn.nspname, bc.relname, ba.attname from deps' +
      ' join pg_catalog.pg_class bc on bc.oid = deps.ref_oid' +
      ' join pg_catalog.pg_namespace bn on bn.oid = bc.relnamespace' +
      ' join pg_catalog.pg_attribute ba on ba.attrelid = deps.ref_oid and ba.attnum = deps.ref_att';
    const rows = await this.withTimeout(this.query(sql));
    const viewRows = await this.withTimeout(this.query(viewSql));
    const at = this.options.clock.now();
    const found = new Map<number, Map<number, string>>();
    for (const row of rows) {
      const [oid, attnum, schema, table, column] = row;
      const columns = found.get(Number(oid)) ?? new Map<number, string>();
      columns.set(Number(attnum), `${schema}.${table}.${column}`);
      found.set(Number(oid), columns);
    }
    const views = new Map<number, string[]>();
    for (const [oid, schema, table, column] of viewRows) {
      const sources = views.get(Number(oid)) ?? [];
      sources.push(`${schema}.${table}.${column}`);
      views.set(Number(oid), sources);
    }
    for (const oid of list) {
      this.cache.set(oid, {
        at,
        columns: found.get(oid) ?? new Map(),
        viewSources: views.get(oid) ?? [],
      });
    }
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    const { clock, timeoutMs } = this.options;
    return new Promise<T>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        this.reset();
        reject(new HoopError('TARGET_UNREACHABLE', `catalog lookup took over ${timeoutMs} ms`));
      }, timeoutMs);
      work.then(
        (v) => {
          clock.clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clock.clearTimeout(timer);
          this.reset();
          reject(err);
        },
      );
    });
  }

  private reset(): void {
    const old = this.connection;
    this.connection = undefined;
    void old?.then(
      ({ socket }) => socket.destroy(),
      () => {},
    );
  }

  private connect(): Promise<SideConnection> {
    this.connection ??= (async () => {
      const o = this.options;
      const { socket } = await dialTarget({
        host: o.target.host,
        port: o.target.port,
        tls: o.target.tls,
        connectTimeoutMs: o.connectTimeoutMs,
        tlsOptions: o.tlsOptions,
        clock: o.clock,
        signal: this.abort.signal,
      });
      socket.on('error', () => {});
      const source = new StreamSource(
        socket,
        new PacketReader({
          side: 'target',
          maxStartupBytes: 10_000,
          maxMessageBytes: 1024 * 1024,
        }),
        'target',
        this.abort.signal,
      );
      socket.write(
        startupMessage(
          targetStartupParameters(o.target, new Map([['application_name', 'hoop-catalog']])),
        ),
      );
      await authenticateToTarget(source, socket, {
        user: o.target.user,
        password: o.password,
        logger: o.logger,
        maxScramIterations: o.maxScramIterations,
      });
      for (;;) {
        const message = await source.message();
        if (message.code === BackendCode.errorResponse) {
          throw new HoopError('TARGET_UNREACHABLE', 'the catalog connection was refused');
        }
        if (message.code === BackendCode.readyForQuery) break;
      }
      o.logger.debug('catalog side connection ready');
      return { socket, source };
    })();
    return this.connection;
  }

  /** Runs one simple query; every value as text (null for NULL). */
  private async query(sql: string): Promise<Array<Array<string | null>>> {
    const { socket, source } = await this.connect();
    socket.write(encodeMessage(0x51, Buffer.from(`${sql}\0`, 'utf8')));
    const rows: Array<Array<string | null>> = [];
    let error: string | undefined;
    for (;;) {
      const raw = await source.message();
      const message = decodeServerMessage(raw.code, raw.body);
      if (message.type === 'data-row') {
        rows.push(message.values.map((v) => (v === null ? null : v.toString('utf8'))));
      } else if (message.type === 'error') {
        error = message.fields.get(ErrorField.message) ?? 'unknown error';
      } else if (message.type === 'ready-for-query') {
        if (error !== undefined) {
          throw new HoopError('TARGET_PROTOCOL_ERROR', `catalog lookup failed: ${error}`);
        }
        return rows;
      }
    }
  }
}
