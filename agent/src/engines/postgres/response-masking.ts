/**
 * Masking decisions for what the target sends back, apart from the proxy's bookkeeping: which
 * strategy each result column gets (from the catalog's column origins, views included), and the
 * detectors applied to the text fields of errors and notices.
 */
import type { Catalog } from './catalog.js';
import type { ColumnPlan, MaskCounts, Masker } from './masking.js';
import { ErrorField } from './messages.js';
import type { FieldDescription } from './protocol.js';

/**
 * The masking plan of a RowDescription. `catalogFailed`: the origins could not be looked up, so
 * every column that comes from a table is redacted (fail closed).
 */
export function planColumns(
  fields: readonly FieldDescription[],
  catalog: Catalog | undefined,
  masker: Masker,
  catalogFailed: boolean,
): ColumnPlan[] {
  const sources = fields.map((f) => {
    if (f.tableOid === 0 || catalog === undefined || !masker.hasColumnMasks) return undefined;
    // A view that reads a masked column: which of its columns carries it is unknown, so each
    // of them is masked as that column (fail closed).
    const maskedBase = catalog
      .viewSources(f.tableOid)
      .find((s) => masker.strategyFor(s) !== undefined);
    return maskedBase ?? catalog.source(f.tableOid, f.attnum);
  });
  const plan = masker.plan(fields, sources);
  if (!catalogFailed) return plan;
  return plan.map((p, i) =>
    (fields[i]?.tableOid ?? 0) === 0
      ? p
      : { ...p, column: '<unresolved>', strategy: 'redact' as const },
  );
}

/** ErrorResponse / NoticeResponse fields with detected values masked; undefined if unchanged. */
export function maskFields(
  fields: ReadonlyMap<number, string>,
  masker: Masker,
  counts: MaskCounts,
): Map<number, string> | undefined {
  let changed: Map<number, string> | undefined;
  for (const [type, value] of fields) {
    if (type === ErrorField.code || type === ErrorField.severity) continue;
    const masked = masker.scanText(value, counts);
    if (masked !== undefined) {
      changed ??= new Map(fields);
      changed.set(type, masked);
    }
  }
  return changed;
}
