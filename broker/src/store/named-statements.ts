/**
 * Named prepared statements for the broker's queries on PostgreSQL.
 *
 * drizzle-orm/postgres-js runs every query it builds with `prepare: false`. postgres.js then
 * sends a query that has parameters in two round trips: Parse + Describe first (to learn the
 * parameter types), then Bind + Execute. A store in another zone pays that twice on every query,
 * and the session row's insert is on a new connection's path.
 *
 * Wrapped here, such a query is prepared under a name on its pooled connection the first time
 * (Parse + Describe + Bind + Execute in one round trip) and only bound and executed after that.
 * Only queries with 1..MAX_PREPARED_PARAMS parameters: a batch insert's SQL differs with its row
 * count, and each distinct text stays prepared for the connection's life on both ends; bounding
 * the parameters bounds how many texts there can be. Batches that large amortize the extra round
 * trip over their rows anyway.
 *
 * Off (HOOP_DATABASE_PREPARE=off) for a pooler that cannot keep named statements: pgbouncer in
 * transaction mode before 1.21, or with max_prepared_statements = 0.
 */
import type postgres from 'postgres';

/** Largest parameter count of a query that gets a named statement. */
export const MAX_PREPARED_PARAMS = 64;

type Sql = postgres.Sql;
type UnsafeOptions = { prepare?: boolean } | undefined;

/** `sql` whose `unsafe` queries (and those of its transactions) use named statements. */
export function withNamedStatements<T extends Sql | postgres.TransactionSql>(sql: T): T {
  return new Proxy(sql, {
    get(target, key, receiver) {
      if (key === 'unsafe') {
        return (query: string, params?: unknown[], options?: UnsafeOptions) =>
          target.unsafe(query, params as postgres.ParameterOrJSON<never>[], {
            ...options,
            prepare: shouldPrepare(params),
          });
      }
      if (key === 'begin' || key === 'savepoint') {
        return (...args: unknown[]) => {
          const last = args.length - 1;
          const body = args[last] as (tx: postgres.TransactionSql) => unknown;
          args[last] = (tx: postgres.TransactionSql) => body(withNamedStatements(tx));
          const method = Reflect.get(target, key) as (...a: unknown[]) => unknown;
          return method(...args);
        };
      }
      return Reflect.get(target, key, receiver);
    },
  });
}

function shouldPrepare(params: unknown[] | undefined): boolean {
  const count = params?.length ?? 0;
  return count > 0 && count <= MAX_PREPARED_PARAMS;
}
