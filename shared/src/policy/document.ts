/**
 * The connection policy document (YAML or JSON as a user writes it; JSON on the wire). Parsed
 * strictly: an unknown key, rule, statement kind, detector or strategy is an error naming it, so
 * a policy that could not be enforced is refused when it is set — and the agent refuses any
 * session whose policy it cannot enforce (fail closed).
 *
 *   guardrails: { deny: [ {statements: [drop, …]}, {rule: delete-without-where}, {functions: [...]}, … ] }
 *   masking:    { columns: [ {column: schema.table.column, strategy: redact|partial|hash} ], detectors: [email, …] }
 *   recording:  { enabled: true }
 *   reviews:    { approvers: [dba, sre], min_approvals: 1, require_all_groups: true,
 *                 break_glass: [oncall],
 *                 access: { required: true, max_duration: 2h, justification: required },
 *                 statements: [ddl, write] }
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

/** Statement classes a review can hold: `ddl`, `write`, or any single statement kind. */
export const reviewStatementClasses = ['ddl', 'write', ...statementKinds] as const;
export type ReviewStatementClass = (typeof reviewStatementClasses)[number];

/** The statement kinds each review class covers. */
export const reviewClassKinds: Readonly<Record<'ddl' | 'write', readonly StatementKind[]>> = {
  ddl: ['create', 'alter', 'drop', 'truncate', 'grant', 'revoke'],
  write: ['insert', 'update', 'delete', 'merge', 'copy'],
};

export const justificationModes = ['required', 'optional'] as const;
export type JustificationMode = (typeof justificationModes)[number];

/** Human approval: whole-access windows and single statements. Keys as the user writes them. */
export interface ReviewsPolicy {
  /** Groups whose members may approve (admins always may). */
  readonly approvers: readonly string[];
  /** Distinct approvers needed (never the requester). */
  readonly min_approvals: number;
  /**
   * Also every group in `approvers` must have approved through one of its members (admins who
   * are not members satisfy no group). Present only when true.
   */
  readonly require_all_groups?: true;
  /**
   * Groups whose members may take access at once, without approvers, with a mandatory
   * justification (break-glass). Needs `access`. Present only when not empty.
   */
  readonly break_glass?: readonly string[];
  readonly access?: {
    readonly required: boolean;
    /** Longest window a review may ask for, as written (`2h`, `30m`, `90s`, seconds). */
    readonly max_duration: string;
    readonly justification: JustificationMode;
  };
  readonly statements?: readonly ReviewStatementClass[];
}

export const DEFAULT_REVIEW_MAX_DURATION = '1h';
export const MAX_REVIEW_MIN_APPROVALS = 10;

/** `90s`, `10m`, `2h`, `1d` or plain seconds → seconds; undefined when it is none of those. */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,7})(s|m|h|d)?$/.exec(value.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * unit : undefined;
}

export interface Policy {
  readonly reviews?: ReviewsPolicy;
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
    hint: 'See the policy schema in the README (guardrails, masking, recording, reviews).',
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
  const root = object(value ?? {}, 'document', ['guardrails', 'masking', 'recording', 'reviews']);
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
  if (root['reviews'] !== undefined) policy.reviews = parseReviews(root['reviews']);
  return policy;
}

function groupNames(value: unknown, path: string): string[] {
  const names = list(value, path).map((g, i) => {
    if (typeof g !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/.test(g))
      fail(`${path}[${i}]`, `${JSON.stringify(g)} is not a group name`);
    return g;
  });
  return [...new Set(names)];
}

function parseReviews(value: unknown): ReviewsPolicy {
  const r = object(value, 'reviews', [
    'approvers',
    'min_approvals',
    'require_all_groups',
    'break_glass',
    'access',
    'statements',
  ]);
  const approvers = groupNames(r['approvers'] ?? [], 'reviews.approvers');
  const min = r['min_approvals'] ?? 1;
  if (
    typeof min !== 'number' ||
    !Number.isInteger(min) ||
    min < 1 ||
    min > MAX_REVIEW_MIN_APPROVALS
  )
    fail('reviews.min_approvals', `must be a whole number from 1 to ${MAX_REVIEW_MIN_APPROVALS}`);
  const out: { -readonly [K in keyof ReviewsPolicy]: ReviewsPolicy[K] } = {
    approvers,
    min_approvals: min,
  };
  const allGroups = r['require_all_groups'] ?? false;
  if (typeof allGroups !== 'boolean') fail('reviews.require_all_groups', 'must be true or false');
  if (allGroups) {
    if (approvers.length === 0)
      fail('reviews.require_all_groups', 'needs at least one group in reviews.approvers');
    out.require_all_groups = true;
  }
  if (r['break_glass'] !== undefined) {
    const groups = groupNames(r['break_glass'], 'reviews.break_glass');
    if (groups.length > 0) {
      if (r['access'] === undefined)
        fail(
          'reviews.break_glass',
          'applies to access reviews: add reviews.access (its max_duration bounds the window)',
        );
      out.break_glass = groups;
    }
  }
  if (r['access'] !== undefined) {
    const a = object(r['access'], 'reviews.access', ['required', 'max_duration', 'justification']);
    const required = a['required'] ?? true;
    if (typeof required !== 'boolean') fail('reviews.access.required', 'must be true or false');
    const maxDuration = a['max_duration'] ?? DEFAULT_REVIEW_MAX_DURATION;
    if (parseDurationSeconds(maxDuration) === undefined)
      fail(
        'reviews.access.max_duration',
        `${JSON.stringify(maxDuration)} is not a duration (90s, 10m, 2h, 1d)`,
      );
    out.access = {
      required,
      max_duration: String(maxDuration),
      justification:
        a['justification'] === undefined
          ? 'optional'
          : oneOf(a['justification'], justificationModes, 'reviews.access.justification', 'mode'),
    };
  }
  if (r['statements'] !== undefined) {
    out.statements = list(r['statements'], 'reviews.statements').map((s, i) =>
      oneOf(s, reviewStatementClasses, `reviews.statements[${i}]`, 'statement class'),
    );
  }
  return out;
}

/** The statement kinds a policy holds for review (its `reviews.statements`, classes expanded). */
export function reviewedStatementKinds(policy: Policy): ReadonlySet<StatementKind> {
  const kinds = new Set<StatementKind>();
  for (const c of policy.reviews?.statements ?? []) {
    if (c === 'ddl' || c === 'write') for (const k of reviewClassKinds[c]) kinds.add(k);
    else kinds.add(c);
  }
  return kinds;
}

/** True when the policy asks the engine to look at content (guardrails or masking). */
export function policyInspectsContent(policy: Policy): boolean {
  return (
    (policy.guardrails?.deny.length ?? 0) > 0 ||
    (policy.masking?.columns?.length ?? 0) > 0 ||
    (policy.masking?.detectors?.length ?? 0) > 0 ||
    (policy.reviews?.statements?.length ?? 0) > 0
  );
}
