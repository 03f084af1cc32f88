/**
 * `hoop exec` results for people: each result set as an aligned table with a row count, like
 * psql's default output; a statement that returns no rows prints its command tag.
 */
import type { ResultSet } from './pg-session.js';

/** The text shown for SQL NULL. */
const NULL_TEXT = '';

export function renderResults(results: readonly ResultSet[]): string {
  return results.map(renderResult).join('\n\n');
}

function renderResult(result: ResultSet): string {
  if (result.columns.length === 0) return result.tag;
  const cells = result.rows.map((row) => row.map((v) => oneLine(v ?? NULL_TEXT)));
  const widths = result.columns.map((name, i) =>
    Math.max(name.length, ...cells.map((row) => (row[i] ?? '').length)),
  );
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  const count = result.rows.length === 1 ? '(1 row)' : `(${result.rows.length} rows)`;
  return [line(result.columns), rule, ...cells.map(line), count].join('\n');
}

/** Newlines and tabs would break the table: shown escaped. */
function oneLine(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\t', '\\t');
}
