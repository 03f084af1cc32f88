/**
 * What every store operation works with: the database, the master key, the clock and the logger,
 * plus the one wrapper (`guard`) through which driver errors leave the store.
 */
import type { Clock, HoopError, Logger } from '@hoop/shared';
import type { BearerCache } from './bearer-cache.js';
import type { Db } from './database.js';
import { driverErrorInfo, internalDbError } from './db-errors.js';
import type { WriteSettler } from './group-commit.js';

export interface StoreContext {
  readonly db: Db;
  /** 32-byte AES-256-GCM key for connection secrets. */
  readonly masterKey: Buffer;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * True when this process is the store's only writer (the embedded PGlite store, which one
   * broker opens at a time): the audit chain head is then cached in memory and its lock skipped.
   */
  readonly exclusive?: boolean;
  /**
   * Counts changes to connections made through this process (policy, tags, deletion), so a
   * cache of resolved connections (the hub's) can tell when an entry is stale.
   */
  readonly changes?: { connections: number };
  /** Verified bearer tokens, on an exclusive store only (bearer-cache.ts). */
  readonly bearers?: BearerCache;
  /** The group commits writing to this store, settled before it closes. */
  readonly writes?: WriteSettler;
}

/** Records that a connection changed (see StoreContext.changes). */
export function noteConnectionChange(ctx: StoreContext): void {
  if (ctx.changes !== undefined) ctx.changes.connections++;
}

/** Records that identities or tokens changed: cached verifications are dropped. */
export function noteIdentityChange(ctx: StoreContext): void {
  ctx.bearers?.forget();
}

/** The clock's current time, as the Date drizzle writes to `timestamp with time zone`. */
export function nowOf(ctx: StoreContext): Date {
  return new Date(ctx.clock.now());
}

/**
 * Runs one store operation; a HoopError passes through, any other error (a driver's) becomes
 * an INTERNAL HoopError naming the operation, without query parameters.
 */
export async function guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw internalDbError(operation, err);
  }
}

/** Whether `err` is the database refusing a statement with this SQLSTATE. */
export function isViolation(err: unknown, sqlState: string): boolean {
  return driverErrorInfo(err).code === sqlState;
}

/** Rethrows `err` as `mapped` when it is a `sqlState` violation, else as it is. */
export function mapViolation(err: unknown, sqlState: string, mapped: () => HoopError): never {
  if (isViolation(err, sqlState)) throw mapped();
  throw err;
}

/** The rows of a raw `db.execute`: postgres.js returns an array, PGlite `{ rows }`. */
export function resultRows<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}
