/**
 * Recording: one `statement` audit event per simple Query message (the whole query string,
 * however many statements it holds — a string with a denied statement is denied as a whole) and
 * one per extended-protocol Execute (the prepared statement's text plus its Bind parameters).
 * Text and parameters are passed through the value detectors before they are recorded, and
 * masking is summarised as counts; raw masked values never reach an event. Denials are
 * recorded even when recording is disabled: they are the policy at work.
 */
import type { AuditEvent, AuditSink, Clock } from '@hoop/shared';
import { MaskCounts, type Masker } from './masking.js';
import { ErrorField } from './messages.js';

export class StatementRecord {
  readonly at: number;
  readonly text: string;
  params: readonly (string | null)[] | undefined;
  rows: number | undefined;
  tag: string | undefined;
  error: { code: string; message: string } | undefined;
  denied: { rule: string } | undefined;
  readonly counts = new MaskCounts();

  constructor(at: number, text: string, params?: readonly (string | null)[]) {
    this.at = at;
    this.text = text;
    this.params = params;
  }

  addRows(rows: number | undefined): void {
    if (rows !== undefined) this.rows = (this.rows ?? 0) + rows;
  }

  failWith(fields: ReadonlyMap<number, string>): void {
    this.error ??= {
      code: fields.get(ErrorField.code) ?? 'XX000',
      message: fields.get(ErrorField.message) ?? '',
    };
  }
}

export interface RecorderOptions {
  readonly sessionId: string;
  readonly sink: AuditSink;
  /** False: only denials are recorded. */
  readonly enabled: boolean;
  readonly clock: Clock;
  readonly masker: Masker;
  /** Longest statement text or parameter recorded, in characters. */
  readonly maxTextChars: number;
}

export class Recorder {
  private readonly options: RecorderOptions;

  constructor(options: RecorderOptions) {
    this.options = options;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  start(text: string, params?: readonly (string | null)[]): StatementRecord {
    return new StatementRecord(this.options.clock.now(), text, params);
  }

  /** Bind parameters as text: text-format as is, binary as `\x` hex. */
  static params(values: readonly (Buffer | null)[], formats: readonly number[]): (string | null)[] {
    return values.map((value, i) => {
      if (value === null) return null;
      const format = formats.length === 1 ? formats[0] : (formats[i] ?? 0);
      return format === 1 ? `\\x${value.toString('hex')}` : value.toString('utf8');
    });
  }

  private clean(text: string): string {
    const { masker, maxTextChars } = this.options;
    const scratch = new MaskCounts();
    let out = masker.scanText(text, scratch) ?? text;
    if (out.startsWith('\\x') && masker.detectors.size > 0) {
      const decoded = Buffer.from(out.slice(2), 'hex').toString('latin1');
      if (masker.scanText(decoded, scratch) !== undefined) out = '\\x[redacted]';
    }
    return out.length > maxTextChars ? `${out.slice(0, maxTextChars)}…[truncated]` : out;
  }

  finish(record: StatementRecord): void {
    if (!this.options.enabled && record.denied === undefined) return;
    const masked = record.counts.summary();
    const event: AuditEvent = {
      type: 'statement',
      session: this.options.sessionId,
      at: record.at,
      text: this.clean(record.text),
      ...(record.params !== undefined
        ? { params: record.params.map((p) => (p === null ? null : this.clean(p))) }
        : {}),
      durationMs: Math.max(0, this.options.clock.now() - record.at),
      ...(record.rows !== undefined ? { rows: record.rows } : {}),
      ...(record.tag !== undefined ? { tag: record.tag } : {}),
      ...(record.error !== undefined
        ? { error: { code: record.error.code, message: this.clean(record.error.message) } }
        : {}),
      ...(record.denied !== undefined ? { denied: record.denied } : {}),
      ...(masked !== undefined ? { masked } : {}),
    };
    this.options.sink(event);
  }
}
