/**
 * Masking of result values. A column is masked by its source (schema.table.column, from the
 * table OID and attribute number the server puts in RowDescription — aliases and views of the
 * same column do not hide it) with the column's strategy; every other value is scanned by the
 * value detectors, which catch what column origin cannot (expressions, JSON, aggregates).
 *
 * Binary-format values: text-like types are masked as their UTF-8 text; a masked column of any
 * other type becomes NULL (never its raw bytes), and a binary value of another type in which a
 * detector finds something (e.g. a text[] array) becomes NULL too.
 */
import { createHmac } from 'node:crypto';
import type { DetectorName, MaskingSummary, MaskStrategy, Policy } from '@hoop/shared';
import { anyGatePasses, featuresOf, redactDetected, redactDetectedIn } from './detectors.js';
import type { FieldDescription } from './protocol.js';

/** Type OIDs whose text or binary form is the value's text. */
const TEXT_TYPES = new Set([25, 1043, 1042, 19, 114, 142, 705, 18]);
const JSONB = 3802;
const BYTEA = 17;

/** Per-statement counts of masked values. */
export class MaskCounts {
  readonly columns = new Map<string, number>();
  readonly detectors = new Map<string, number>();

  column(name: string): void {
    this.columns.set(name, (this.columns.get(name) ?? 0) + 1);
  }

  get empty(): boolean {
    return this.columns.size === 0 && this.detectors.size === 0;
  }

  summary(): MaskingSummary | undefined {
    if (this.empty) return undefined;
    return {
      columns: Object.fromEntries(this.columns),
      detectors: Object.fromEntries(this.detectors),
    };
  }
}

/** How one result column is treated. */
export interface ColumnPlan {
  /** The masked source column (schema.table.column) and its strategy, when masked by column. */
  readonly column: string | undefined;
  readonly strategy: MaskStrategy | undefined;
  readonly typeOid: number;
  readonly binary: boolean;
}

export class Masker {
  readonly detectors: ReadonlySet<DetectorName>;
  private readonly columns: ReadonlyMap<string, MaskStrategy>;
  private readonly key: Buffer;

  constructor(policy: Policy, key: Buffer) {
    this.detectors = new Set(policy.masking?.detectors ?? []);
    this.columns = new Map(
      (policy.masking?.columns ?? []).map((c) => [c.column.toLowerCase(), c.strategy]),
    );
    this.key = key;
  }

  get active(): boolean {
    return this.detectors.size > 0 || this.columns.size > 0;
  }

  get hasColumnMasks(): boolean {
    return this.columns.size > 0;
  }

  /** The strategy for a source column, if it is masked. */
  strategyFor(qualified: string): MaskStrategy | undefined {
    return this.columns.get(qualified.toLowerCase());
  }

  /** The plan for a RowDescription, given each field's source column name (when known). */
  plan(
    fields: readonly FieldDescription[],
    sources: readonly (string | undefined)[],
    formats?: readonly number[],
  ): ColumnPlan[] {
    return fields.map((field, i) => {
      const source = sources[i];
      const strategy = source === undefined ? undefined : this.strategyFor(source);
      const format =
        formats === undefined || formats.length === 0
          ? field.format
          : formats.length === 1
            ? (formats[0] as number)
            : (formats[i] ?? 0);
      return {
        column: strategy === undefined ? undefined : source,
        strategy,
        typeOid: field.typeOid,
        binary: format === 1,
      };
    });
  }

  /** Applies a column strategy to a text value. */
  maskText(strategy: MaskStrategy, value: string): string {
    switch (strategy) {
      case 'redact':
        return '[redacted]';
      case 'hash':
        return `hash:${createHmac('sha256', this.key).update(value).digest('hex').slice(0, 16)}`;
      case 'partial': {
        const at = value.lastIndexOf('@');
        if (at > 0) return `${value[0]}***${value.slice(at)}`;
        if (value.length <= 4) return '*'.repeat(value.length);
        return '*'.repeat(value.length - 4) + value.slice(-4);
      }
    }
  }

  /** Detector pass over text; undefined when nothing was found. */
  scanText(text: string, counts: MaskCounts): string | undefined {
    if (this.detectors.size === 0) return undefined;
    return redactDetected(text, this.detectors, counts.detectors);
  }

  /**
   * Detector pass over a text still in bytes (`encoding` says how to read them; the text starts
   * at `from`): decoded only when a detector may find something. Undefined when nothing was
   * found.
   */
  scanBytes(
    bytes: Buffer,
    counts: MaskCounts,
    encoding: 'utf8' | 'latin1' = 'utf8',
    from = 0,
  ): string | undefined {
    return redactDetectedIn(bytes, encoding, this.detectors, counts.detectors, from);
  }

  /**
   * Whether maskValue could change (or count) the value at `bytes[start, end)`: false only when
   * it would certainly give the value back as it is, decided on the bytes where they lie (no
   * view, no decoding), so that a row nothing is found in is forwarded as it came.
   */
  mayChange(bytes: Buffer, start: number, end: number, plan: ColumnPlan | undefined): boolean {
    if (plan?.strategy !== undefined) return true;
    if (this.detectors.size === 0 || end - start < 6) return false;
    if (plan?.binary === true && !TEXT_TYPES.has(plan.typeOid)) return true;
    // bytea's hex output is decoded and looked into (scanByteaHex).
    if (bytes[start] === 0x5c && bytes[start + 1] === 0x78) return true;
    return anyGatePasses(featuresOf(bytes, start, end), this.detectors);
  }

  /**
   * One DataRow value under its column plan: the same Buffer when unchanged, a new one (or
   * null) when masked.
   */
  maskValue(value: Buffer | null, plan: ColumnPlan | undefined, counts: MaskCounts): Buffer | null {
    if (value === null) return null;
    const binary = plan?.binary ?? false;
    const typeOid = plan?.typeOid ?? 0;
    if (plan?.strategy !== undefined && plan.column !== undefined) {
      counts.column(plan.column);
      if (!binary || TEXT_TYPES.has(typeOid) || typeOid === BYTEA) {
        if (binary || TEXT_TYPES.has(typeOid)) {
          return Buffer.from(this.maskText(plan.strategy, value.toString('utf8')), 'utf8');
        }
        // Text format of a non-text type: a masked string would not parse as that type.
        return null;
      }
      if (typeOid === JSONB && value.length > 0) {
        const masked = JSON.stringify(this.maskText(plan.strategy, value.toString('utf8', 1)));
        return Buffer.concat([value.subarray(0, 1), Buffer.from(masked, 'utf8')]);
      }
      return null;
    }
    if (this.detectors.size === 0 || value.length < 6) return value;
    if (!binary || TEXT_TYPES.has(typeOid)) {
      const masked = this.scanBytes(value, counts) ?? this.scanByteaHex(value, counts);
      return masked === undefined ? value : Buffer.from(masked, 'utf8');
    }
    if (typeOid === JSONB) {
      const masked = this.scanBytes(value.subarray(1), counts);
      if (masked === undefined) return value;
      return Buffer.concat([value.subarray(0, 1), Buffer.from(masked, 'utf8')]);
    }
    // Any other binary value (bytea, arrays, records, …): NULL when a detector finds anything.
    const hit = this.scanBytes(value, counts, 'latin1');
    return hit === undefined ? value : null;
  }

  /** bytea text output (`\x` + hex) hides text from detectors: decode it and look inside. */
  private scanByteaHex(value: Buffer, counts: MaskCounts): string | undefined {
    // `\x` and at least 12 hex digits (6 bytes: the shortest text a detector looks at).
    if (value.length < 14 || value[0] !== 0x5c || value[1] !== 0x78) return undefined;
    const hex = value.toString('latin1', 2);
    if (!/^[0-9a-fA-F]+$/.test(hex)) return undefined;
    return this.scanBytes(Buffer.from(hex, 'hex'), counts, 'latin1') === undefined
      ? undefined
      : '\\x';
  }
}
