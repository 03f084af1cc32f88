/**
 * A query with parameters in one call into PGlite's PostgreSQL instead of six.
 *
 * PGlite's `query()` sends Parse, Describe (of the statement, to learn the parameters' types so
 * it can serialize the values), Bind, Describe (of the portal), Execute and Sync as six separate
 * calls into its WebAssembly module, each with its own parsing of what came back. Measured in
 * one thread on this repository's 2-core machine: `select $1::int` 460-530 µs, an insert of four
 * values 480-530 µs; the same messages in one call 130-160 and 220-230 µs. The session row's
 * insert is on every new connection's path.
 *
 * The values go as text with no declared type, so the server infers the types from the
 * statement, as it does for PGlite's own Parse. That needs no serializer when every value is
 * null, a string, a finite number, a bigint or a boolean, which is what drizzle hands over for
 * the store's columns (timestamps and JSON arrive as strings). Anything else (a Date, an array,
 * bytes) returns undefined from `textParams`, and the caller uses PGlite's `query()`.
 */
import type { PGlite, Results } from '@electric-sql/pglite';

type Parser = (value: string, type: number) => unknown;

export interface OneRoundOptions {
  readonly rowMode: 'array' | 'object' | undefined;
  /** Parsers that take precedence over PGlite's for these type OIDs. */
  readonly parsers?: Readonly<Record<number, Parser>>;
}

/** The values as the text PostgreSQL reads, or undefined when one of them needs a serializer. */
export function textParams(params: readonly unknown[] | undefined): (string | null)[] | undefined {
  const out: (string | null)[] = [];
  for (const value of params ?? []) {
    if (value === null || value === undefined) out.push(null);
    else if (typeof value === 'string') out.push(value);
    else if (typeof value === 'number' && Number.isFinite(value)) out.push(String(value));
    else if (typeof value === 'bigint') out.push(String(value));
    else if (typeof value === 'boolean') out.push(value ? 't' : 'f');
    else return undefined;
  }
  return out;
}

/**
 * The frontend messages of one unnamed extended-protocol query, in one buffer sized up front:
 * Parse (no parameter types: the server infers them), Bind (every value as text, null as -1;
 * every result column as text), Describe of the portal, Execute (all rows) and Sync. PGlite's
 * serializer writes the same bytes through a growing buffer and a copy per message: measured
 * 1.25 → 0.09–0.12 ms for an audit batch (one 300 KB parameter), 25–27 → 2.1 µs for the session
 * row's seven values; under recorded `pgbench -c 8` it was ~5 % of the store thread's profile.
 */
export function extendedQuery(sql: string, values: readonly (string | null)[]): Buffer {
  const sqlBytes = Buffer.byteLength(sql);
  const valueBytes = values.map((v) => (v === null ? -1 : Buffer.byteLength(v)));
  // Parse: tag, length, "" name, query, int16 count of types.
  const parse = 1 + 4 + 1 + sqlBytes + 1 + 2;
  // Bind: tag, length, "" portal, "" statement, int16 count and a text format code (0) per
  // value, int16 count, each value's int32 length and bytes, int16 result formats (0: text).
  let bind = 1 + 4 + 1 + 1 + 2 + 2 * values.length + 2 + 2;
  for (const n of valueBytes) bind += 4 + Math.max(n, 0);
  const describe = 1 + 4 + 1 + 1;
  const execute = 1 + 4 + 1 + 4;
  const sync = 1 + 4;
  const out = Buffer.allocUnsafe(parse + bind + describe + execute + sync);
  let at = 0;
  at = out.writeUInt8(0x50, at); // 'P'
  at = out.writeInt32BE(parse - 1, at);
  at = out.writeUInt8(0, at);
  at += out.write(sql, at);
  at = out.writeUInt8(0, at);
  at = out.writeInt16BE(0, at);
  at = out.writeUInt8(0x42, at); // 'B'
  at = out.writeInt32BE(bind - 1, at);
  at = out.writeUInt8(0, at);
  at = out.writeUInt8(0, at);
  at = out.writeInt16BE(values.length, at);
  for (let i = 0; i < values.length; i++) at = out.writeInt16BE(0, at);
  at = out.writeInt16BE(values.length, at);
  values.forEach((value, i) => {
    at = out.writeInt32BE(valueBytes[i] as number, at);
    if (value !== null) at += out.write(value, at);
  });
  at = out.writeInt16BE(0, at);
  at = out.writeUInt8(0x44, at); // 'D'
  at = out.writeInt32BE(describe - 1, at);
  at = out.writeUInt8(0x50, at); // 'P': the portal
  at = out.writeUInt8(0, at);
  at = out.writeUInt8(0x45, at); // 'E'
  at = out.writeInt32BE(execute - 1, at);
  at = out.writeUInt8(0, at);
  at = out.writeInt32BE(0, at);
  at = out.writeUInt8(0x53, at); // 'S'
  out.writeInt32BE(4, at);
  return out;
}

/**
 * Runs `sql` with `values` (from textParams) in one call. Outside a transaction it waits for the
 * transaction lock as PGlite's `query()` does; inside one (`inTransaction`, whose callback holds
 * that lock) it takes the query lock only. A server error rejects with PGlite's DatabaseError
 * (SQLSTATE in `code`); the Sync in the same call has already brought the session back to idle.
 */
export async function queryInOneRound<T>(
  db: PGlite,
  sql: string,
  values: readonly (string | null)[],
  options: OneRoundOptions,
  inTransaction: boolean,
): Promise<Results<T>> {
  const message = extendedQuery(sql, values);
  const run = () => db._runExclusiveQuery(() => db.execProtocol(message, { syncToFs: false }));
  const { messages } = inTransaction ? await run() : await db._runExclusiveTransaction(run);
  if (!inTransaction) await db.syncToFs();
  return resultsOf(messages, db.parsers, options) as Results<T>;
}

interface Message {
  readonly name: string;
  readonly fields?: readonly unknown[];
  readonly text?: string;
}

/**
 * PGlite's Results from the messages of one statement: the fields of its RowDescription, its
 * DataRows through the type parsers, the row count of its CommandComplete. (PGlite's own
 * parseResults copies its whole table of parsers for every query.)
 */
function resultsOf(
  messages: readonly Message[],
  parsers: Readonly<Record<number, Parser>>,
  options: OneRoundOptions,
): Results<unknown> {
  let fields: { name: string; dataTypeID: number }[] = [];
  let byColumn: (Parser | undefined)[] = [];
  const rows: unknown[] = [];
  let affectedRows = 0;
  for (const message of messages) {
    if (message.name === 'rowDescription') {
      fields = (message.fields as { name: string; dataTypeID: number }[]).map((f) => ({
        name: f.name,
        dataTypeID: f.dataTypeID,
      }));
      byColumn = fields.map((f) => options.parsers?.[f.dataTypeID] ?? parsers[f.dataTypeID]);
    } else if (message.name === 'dataRow') {
      const values = (message.fields as (string | null)[]).map((value, i) => {
        if (value === null) return null;
        const parser = byColumn[i];
        return parser === undefined ? value : parser(value, fields[i]?.dataTypeID ?? 0);
      });
      if (options.rowMode === 'array') rows.push(values);
      else rows.push(Object.fromEntries(fields.map((f, i) => [f.name, values[i]])));
    } else if (message.name === 'commandComplete') {
      affectedRows = rowCount(message.text ?? '');
      break;
    }
  }
  return { rows, fields, affectedRows };
}

/** Rows a command touched, from its tag (`INSERT 0 3`, `UPDATE 2`, …); 0 for the others. */
function rowCount(tag: string): number {
  const parts = tag.split(' ');
  switch (parts[0]) {
    case 'INSERT':
      return Number.parseInt(parts[2] ?? '0', 10);
    case 'UPDATE':
    case 'DELETE':
    case 'COPY':
    case 'MERGE':
      return Number.parseInt(parts[1] ?? '0', 10);
    default:
      return 0;
  }
}
