/**
 * Messages between the broker's thread (pglite-thread.ts) and the embedded store's worker
 * (pglite-worker.ts). Values cross by structured clone, so no functions: drizzle's result
 * parsers, which keep date and interval types as text, are sent as the list of type OIDs they
 * cover and rebuilt on the worker's side.
 */

export interface QueryRequest {
  readonly op: 'query';
  readonly id: number;
  readonly sql: string;
  readonly params: unknown[] | undefined;
  readonly rowMode: 'array' | 'object' | undefined;
  /** Type OIDs whose values are returned as the server's text. */
  readonly textTypes: readonly number[] | undefined;
  /** The transaction this query belongs to (from `begin`). */
  readonly tx: number | undefined;
}

export type ClientMessage =
  | { readonly op: 'open'; readonly id: number; readonly dataDir: string | undefined }
  | QueryRequest
  | { readonly op: 'begin'; readonly id: number }
  | { readonly op: 'end'; readonly id: number; readonly tx: number; readonly commit: boolean }
  | { readonly op: 'close'; readonly id: number };

/** A driver error with the fields db-errors.ts reads (SQLSTATE `code`, `constraint`, …). */
export interface SerializedDbError {
  message: string;
  name?: string;
  code?: string;
  constraint?: string;
  detail?: string;
  severity?: string;
  table?: string;
  column?: string;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedDbError };

const keepText = (value: string): string => value;

/** Parsers that return the text of each listed type as it is. */
export function textParsers(oids: readonly number[]): Record<number, (value: string) => string> {
  const parsers: Record<number, (value: string) => string> = {};
  for (const oid of oids) parsers[oid] = keepText;
  return parsers;
}
