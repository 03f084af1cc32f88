/**
 * The one place driver errors become HoopErrors. Both drivers (postgres.js `PostgresError`,
 * PGlite `DatabaseError`) expose the SQLSTATE as `code`; drizzle wraps them in an error whose
 * message lists the query parameters (token hashes, ciphertexts), so that wrapper is never
 * passed on: only the driver's own message and SQLSTATE are.
 */
import { HoopError } from '@hoop/shared';
import { DrizzleQueryError } from 'drizzle-orm';

/** SQLSTATE codes the store reacts to. */
export const SqlState = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
} as const;

export interface DriverErrorInfo {
  /** SQLSTATE, or a Node.js errno such as ECONNREFUSED. */
  readonly code: string | undefined;
  /** The violated constraint, when the server names one. */
  readonly constraint: string | undefined;
  readonly message: string;
}

/**
 * Finds the driver's error under drizzle's wrapper (follows `cause` a few levels). Without a
 * SQLSTATE anywhere (a closed store, a dropped connection), the innermost error's message is
 * used: drizzle's own wrapper (`Failed query: … params: …`) is never the source of a message.
 */
export function driverErrorInfo(err: unknown): DriverErrorInfo {
  let current: unknown = err;
  let innermost: Error | undefined;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const fields = current as { code?: unknown; constraint?: unknown; constraint_name?: unknown };
    if (typeof fields.code === 'string') {
      const constraint = fields.constraint ?? fields.constraint_name;
      return {
        code: fields.code,
        constraint: typeof constraint === 'string' ? constraint : undefined,
        message: current.message,
      };
    }
    // drizzle's wrapper: its message holds the query's parameters.
    if (!(current instanceof DrizzleQueryError)) innermost = current;
    current = current.cause;
  }
  return {
    code: undefined,
    constraint: undefined,
    message: innermost?.message ?? 'unknown error',
  };
}

/** A HoopError for an unexpected database failure, safe to show and log. */
export function internalDbError(operation: string, err: unknown): HoopError {
  if (err instanceof HoopError) return err;
  const info = driverErrorInfo(err);
  const code = info.code === undefined ? '' : ` (${info.code})`;
  return new HoopError('INTERNAL', `Store: ${operation} failed: ${info.message}${code}`, {
    hint: 'Check that the broker database is reachable and migrated; the broker log has details.',
  });
}
