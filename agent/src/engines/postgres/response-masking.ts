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

/**
 * Whether masking could change a DataRow (`frame`: type, length, Int16 count, then per value an
 * Int32 length, -1 for NULL, and its bytes), looked at in place. A frame that does not add up is
 * left to the decoder, which reports it.
 */
export function rowMayChange(
  frame: Buffer,
  plan: readonly ColumnPlan[] | undefined,
  masker: Masker,
): boolean {
  if (frame.length < 7) return true;
  const count = frame.readInt16BE(5);
  let offset = 7;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > frame.length) return true;
    const length = frame.readInt32BE(offset);
    offset += 4;
    if (length < 0) continue;
    const end = offset + length;
    if (end > frame.length || masker.mayChange(frame, offset, end, plan?.[i])) return true;
    offset = end;
  }
  return offset !== frame.length;
}
