/**
 * The embedded store on its own thread: a PGlite stand-in for drizzle-orm/pglite whose `query`
 * and `transaction` run in a worker (pglite-worker.ts) that owns the real PGlite. The broker's
 * event loop then never executes SQL itself: an audit group commit no longer stalls the tunnel
 * relay, and on a multi-core machine the store runs beside it.
 *
 * Same semantics as an in-process PGlite: one database, queries one at a time, a transaction
 * holds the database until it ends (other queries wait for it). The worker is referenced only
 * while requests are pending, so an idle store never keeps the process alive.
 */
import { Worker } from 'node:worker_threads';
import type {
  ClientMessage,
  QueryRequest,
  SerializedDbError,
  WorkerReply,
} from './pglite-protocol.js';

/** What drizzle-orm/pglite passes as query options. */
interface QueryOptions {
  readonly rowMode?: 'array' | 'object';
  readonly parsers?: Readonly<Record<number, (value: string, typeId?: number) => unknown>>;
}

/** The part of a PGlite query result drizzle reads. */
export interface ThreadQueryResult {
  readonly rows: unknown[];
  readonly fields: { name: string; dataTypeID: number }[];
  readonly affectedRows?: number;
}

interface TransactionClient {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<ThreadQueryResult>;
}

type Request = ClientMessage extends infer M
  ? M extends { id: number }
    ? Omit<M, 'id'>
    : never
  : never;

/** An error from the worker, with the driver's fields (`code`, `constraint`, …) restored. */
export class EmbeddedStoreError extends Error {
  readonly code?: string;
  readonly constraint?: string;
  readonly detail?: string;

  constructor(error: SerializedDbError) {
    super(error.message);
    this.name = error.name ?? 'EmbeddedStoreError';
    if (error.code !== undefined) this.code = error.code;
    if (error.constraint !== undefined) this.constraint = error.constraint;
    if (error.detail !== undefined) this.detail = error.detail;
  }
}

const PROBE = '\u0000hoop-probe';

/** The OIDs drizzle asks to keep as text; refuses parsers that would do anything else. */
function textTypesOf(options: QueryOptions | undefined): number[] | undefined {
  if (options?.parsers === undefined) return undefined;
  return Object.entries(options.parsers).map(([oid, parse]) => {
    if (parse(PROBE) !== PROBE) {
      throw new Error(`the embedded store cannot run a custom parser for type ${oid}`);
    }
    return Number(oid);
  });
}

export class PgliteThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (err: Error) => void }
  >();
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor() {
    this.worker = new Worker(new URL('./pglite-worker.js', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      // terminate() after close() ends it on purpose; any other exit is a failure.
      if (this.closing === undefined) {
        this.fail(new Error(`the embedded store's thread exited (code ${code})`));
      }
    });
  }

  /** Starts the thread and opens PGlite in `dataDir` (in memory when undefined). */
  static async open(dataDir: string | undefined): Promise<PgliteThread> {
    const thread = new PgliteThread();
    try {
      await thread.call({ op: 'open', dataDir });
    } catch (err) {
      await thread.worker.terminate();
      throw err;
    }
    return thread;
  }

  get closed(): boolean {
    return this.closing !== undefined || this.failure !== undefined;
  }

  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<ThreadQueryResult> {
    return this.runQuery(undefined, sql, params, options);
  }

  /**
   * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws (the
   * error is rethrown). Queries outside it wait until it ends, as with PGlite itself.
   */
  async transaction<T>(fn: (tx: TransactionClient) => Promise<T>): Promise<T> {
    const tx = (await this.call({ op: 'begin' })) as number;
    const client: TransactionClient = {
      query: (sql, params, options) => this.runQuery(tx, sql, params, options),
    };
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      await this.call({ op: 'end', tx, commit: false }).catch(() => {});
      throw err;
    }
    await this.call({ op: 'end', tx, commit: true });
    return result;
  }

  /** Closes PGlite (flushing it to disk) and ends the thread. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.failure === undefined) await this.call({ op: 'close' }, true);
      } finally {
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  private async runQuery(
    tx: number | undefined,
    sql: string,
    params: unknown[] | undefined,
    options: QueryOptions | undefined,
  ): Promise<ThreadQueryResult> {
    const request: Omit<QueryRequest, 'id'> = {
      op: 'query',
      sql,
      params,
      rowMode: options?.rowMode,
      textTypes: textTypesOf(options),
      tx,
    };
    return this.call(request) as Promise<ThreadQueryResult>;
  }

  private call(request: Request, closing = false): Promise<unknown> {
    if (this.closing !== undefined && !closing) {
      return Promise.reject(new Error('the embedded store is closed'));
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id } as ClientMessage);
    });
  }

  private onReply(reply: WorkerReply): void {
    const waiter = this.pending.get(reply.id);
    if (waiter === undefined) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new EmbeddedStoreError(reply.error));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }
}
