/**
 * Audit events produced by engines at the agent and sent to the broker. They never carry raw
 * secrets or raw values that masking hid: statement text and parameters are recorded after
 * masking, and masking is summarised as counts per column and detector.
 */

export interface MaskingSummary {
  /** schema.table.column → values masked */
  readonly columns: Readonly<Record<string, number>>;
  /** detector name → values masked */
  readonly detectors: Readonly<Record<string, number>>;
}

export type AuditEvent =
  | {
      readonly type: 'statement';
      readonly session: string;
      /** epoch ms when the statement was received */
      readonly at: number;
      readonly text: string;
      /** Bind parameters as text, masked per policy (extended protocol). */
      readonly params?: readonly (string | null)[];
      readonly durationMs: number;
      readonly rows?: number;
      /** The command tag the target answered (e.g. "SELECT 3"). */
      readonly tag?: string;
      readonly error?: { readonly code: string; readonly message: string };
      /** Set when a guardrail refused the statement: the rule that did. */
      readonly denied?: { readonly rule: string };
      readonly masked?: MaskingSummary;
    }
  | {
      readonly type: 'session-start' | 'session-end';
      readonly session: string;
      readonly at: number;
      readonly connection: string;
      readonly user: string;
      readonly detail?: string;
    };

export type AuditSink = (event: AuditEvent) => void;
