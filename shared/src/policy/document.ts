/**
 * The connection policy document (YAML or JSON as a user writes it; JSON on the wire). Parsed
 * strictly: an unknown key, rule, statement kind, detector or strategy is an error naming it, so
 * a policy that could not be enforced is refused when it is set — and the agent refuses any
 * session whose policy it cannot enforce (fail closed).
 *
 *   guardrails: { deny: [ {statements: [drop, …]}, {rule: delete-without-where}, {functions: [...]}, … ] }
 *   masking:    { columns: [ {column: schema.table.column, strategy: redact|partial|hash} ], detectors: [email, …] }
 *   recording:  { enabled: true }
 */
import { HoopError } from '../errors.js';

export const statementKinds = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'create',
  'alter',
  'drop',
  'truncate',
  'grant',
  'revoke',
  'copy',
  'do',
  'call',
  'prepare',
  'execute',
  'set',
  'vacuum',
  'lock',
  'listen',
  'notify',
  'transaction',
  'other',
] as const;
export type StatementKind = (typeof statementKinds)[number];

export const guardrailRules = [
  'delete-without-where',
  'update-without-where',
  'copy-program',
  'multi-statement',
] as const;
export type GuardrailRuleName = (typeof guardrailRules)[number];

export const detectorNames = ['email', 'credit_card', 'iban', 'phone', 'us_ssn', 'jwt'] as const;
export type DetectorName = (typeof detectorNames)[number];

export const maskStrategies = ['redact', 'partial', 'hash'] as const;
export type MaskStrategy = (typeof maskStrategies)[number];

export type GuardrailDeny =
  | { readonly statements: readonly StatementKind[] }
  | { readonly rule: GuardrailRuleName }
  | { readonly functions: readonly string[] };

export interface ColumnMask {
  /** schema.table.column */
  readonly column: string;
  readonly strategy: MaskStrategy;
}

export interface Policy {
  readonly guardrails?: { readonly deny: readonly GuardrailDeny[] };
  readonly masking?: {
    readonly columns?: readonly ColumnMask[];
    readonly detectors?: readonly DetectorName[];
  };
  readonly recording?: { readonly enabled: boolean };
}

/** No guardrails, no masking, recording on: what a connection without a policy gets. */
export const defaultPolicy: Policy = { recording: { enabled: true } };

function fail(path: string, message: string): never {
  throw new HoopError('INVALID_REQUEST', `policy ${path}: ${message}`, {
    hint: 'See the policy schema in the README (guardrails, masking, recording).',
  });
}

type Obj = Record<string, unknown>;

function object(value: unknown, path: string, keys: readonly string[]): Obj {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(path, 'must be a mapping');
  for (const key of Object.keys(value)) {
    if (!keys.includes(key))
      fail(`${path}.${key}`, `unknown key (expected one of: ${keys.join(', ')})`);
  }
  return value as Obj;
}

function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, 'must be a list');
  if (value.length > 1000) fail(path, 'has more than 1000 entries');
  return value;
}

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: string,
  what: string,
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value.toLowerCase())) {
    fail(path, `unknown ${what} ${JSON.stringify(value)} (known: ${allowed.join(', ')})`);
  }
  return value.toLowerCase() as T;
}

function identifier(value: unknown, path: string): string {
  if (
    typeof value !== 'string' ||
    !/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(value)
  ) {
    fail(path, `${JSON.stringify(value)} is not a function name`);
  }
  return value.toLowerCase();
}

function column(value: unknown, path: string): string {
  if (typeof value !== 'string' || !/^[^.\s]+\.[^.\s]+\.[^.\s]+$/.test(value)) {
    fail(path, `${JSON.stringify(value)} is not schema.table.column`);
  }
  return value;
}

/** Validates a parsed document (from YAML or JSON) into a Policy. */
export function parsePolicy(value: unknown): Policy {
  const root = object(value ?? {}, 'document', ['guardrails', 'masking', 'recording']);
  const policy: { -readonly [K in keyof Policy]: Policy[K] } = {};
  if (root['guardrails'] !== undefined) {
    const g = object(root['guardrails'], 'guardrails', ['deny']);
    const deny = list(g['deny'] ?? [], 'guardrails.deny').map((entry, i): GuardrailDeny => {
      const path = `guardrails.deny[${i}]`;
      const e = object(entry, path, ['statements', 'rule', 'functions']);
      const present = Object.keys(e);
      if (present.length !== 1) fail(path, 'must have exactly one of statements, rule, functions');
      if (e['statements'] !== undefined) {
        return {
          statements: list(e['statements'], `${path}.statements`).map((s, j) =>
            oneOf(s, statementKinds, `${path}.statements[${j}]`, 'statement kind'),
          ),
        };
      }
      if (e['rule'] !== undefined)
        return { rule: oneOf(e['rule'], guardrailRules, `${path}.rule`, 'rule') };
      return {
        functions: list(e['functions'], `${path}.functions`).map((f, j) =>
          identifier(f, `${path}.functions[${j}]`),
        ),
      };
    });
    policy.guardrails = { deny };
  }
  if (root['masking'] !== undefined) {
    const m = object(root['masking'], 'masking', ['columns', 'detectors']);
    const columns = list(m['columns'] ?? [], 'masking.columns').map((entry, i): ColumnMask => {
      const path = `masking.columns[${i}]`;
      const c = object(entry, path, ['column', 'strategy']);
      return {
        column: column(c['column'], `${path}.column`),
        strategy:
          c['strategy'] === undefined
            ? 'redact'
            : oneOf(c['strategy'], maskStrategies, `${path}.strategy`, 'strategy'),
      };
    });
    const detectors = list(m['detectors'] ?? [], 'masking.detectors').map((d, i) =>
      oneOf(d, detectorNames, `masking.detectors[${i}]`, 'detector'),
    );
    policy.masking = { columns, detectors };
  }
  if (root['recording'] !== undefined) {
    const r = object(root['recording'], 'recording', ['enabled']);
    if (typeof r['enabled'] !== 'boolean') fail('recording.enabled', 'must be true or false');
    policy.recording = { enabled: r['enabled'] };
  } else {
    policy.recording = { enabled: true };
  }
  return policy;
}

/** True when the policy asks the engine to look at content (guardrails or masking). */
export function policyInspectsContent(policy: Policy): boolean {
  return (
    (policy.guardrails?.deny.length ?? 0) > 0 ||
    (policy.masking?.columns?.length ?? 0) > 0 ||
    (policy.masking?.detectors?.length ?? 0) > 0
  );
}
