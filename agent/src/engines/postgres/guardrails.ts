/**
 * Guardrails: decides from the parse tree (sql.ts) whether a SQL string may reach the target.
 * Fails closed: SQL hoop cannot parse, code it cannot see into (DO blocks, non-SQL function
 * bodies, functions that run SQL given as text) and EXECUTE of a statement it did not see
 * prepared are denied whenever any guardrail is configured. Masking adds its own COPY checks:
 * COPY TO STDOUT output can only be scanned for detector matches, so binary COPY, COPY with
 * custom delimiters/quotes, and COPY of a table that has masked columns are denied.
 */

import { type Policy, reviewedStatementKinds, type StatementKind } from '@hoop/shared';
import { type AnalysisCache, maskedKeyOf, sharedAnalysisCache } from './analysis-cache.js';
import type { MaskedColumnRef } from './masked-refs.js';
import { SqlState } from './messages.js';
import type { SqlParse, StatementFacts } from './sql.js';

export interface Denial {
  /** The rule, as recorded in audit events (e.g. "statements: drop"). */
  readonly rule: string;
  /** What the client is told (already prefixed with "hoop: "). */
  readonly message: string;
  readonly sqlstate: string;
  /** ErrorResponse detail (statement reviews: which hoop error and review, see review-gate.ts). */
  readonly detail?: string;
}

export type Verdict =
  | { readonly allowed: true; readonly statements: readonly StatementFacts[] }
  | { readonly allowed: false; readonly denial: Denial };

/** Functions that execute SQL handed to them as text: hoop cannot see what they run. */
export const DYNAMIC_SQL_FUNCTIONS: readonly string[] = [
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_send_query',
];

export function denial(
  reason: string,
  rule: string,
  sqlstate: string = SqlState.insufficientPrivilege,
): Denial {
  return {
    rule,
    message: `hoop: statement denied by policy: ${reason} (rule ${rule})`,
    sqlstate,
  };
}

export class Guardrails {
  /** True when any guardrail is configured. */
  readonly active: boolean;
  private readonly kinds: ReadonlySet<StatementKind>;
  private readonly rules: ReadonlySet<string>;
  private readonly functions: ReadonlySet<string>;
  private readonly maskingActive: boolean;
  /** Tables (lower case, unqualified) with masked columns. */
  private readonly maskedTables: ReadonlySet<string>;
  private readonly maskedColumns: readonly MaskedColumnRef[];
  private readonly maskedKey: string;
  private readonly parse: SqlParse | undefined;
  /** Statement kinds held for approval (`reviews.statements`). */
  readonly reviewKinds: ReadonlySet<StatementKind>;

  constructor(
    policy: Policy,
    parse: SqlParse | undefined,
    private readonly analyses: AnalysisCache = sharedAnalysisCache,
  ) {
    this.reviewKinds = reviewedStatementKinds(policy);
    const deny = policy.guardrails?.deny ?? [];
    this.active = deny.length > 0;
    const kinds = new Set<StatementKind>();
    const rules = new Set<string>();
    const functions = new Set<string>();
    for (const entry of deny) {
      if ('statements' in entry) for (const k of entry.statements) kinds.add(k);
      else if ('rule' in entry) rules.add(entry.rule);
      else for (const f of entry.functions) functions.add(f.toLowerCase().split('.').pop() ?? f);
    }
    this.kinds = kinds;
    this.rules = rules;
    this.functions = functions;
    const columns = policy.masking?.columns ?? [];
    this.maskingActive = columns.length > 0 || (policy.masking?.detectors?.length ?? 0) > 0;
    this.maskedTables = new Set(columns.map((c) => (c.column.split('.')[1] ?? '').toLowerCase()));
    this.maskedColumns = columns.map((c) => {
      const [, table = '', column = ''] = c.column.toLowerCase().split('.');
      return { table, column };
    });
    this.maskedKey = maskedKeyOf(this.maskedColumns);
    this.parse = parse;
  }

  /** Whether SQL has to be parsed at all for this policy. */
  get needed(): boolean {
    return this.active || this.maskingActive || this.reviewKinds.size > 0;
  }

  /** The first kind among the statements that needs approval, if any. */
  reviewKind(statements: readonly StatementFacts[]): StatementKind | undefined {
    if (this.reviewKinds.size === 0) return undefined;
    for (const facts of statements) {
      for (const kind of [facts.kind, ...facts.kinds]) if (this.reviewKinds.has(kind)) return kind;
      // SQL hoop cannot see into (DO, EXECUTE, dynamic-SQL functions) may be anything: held too.
      if (
        facts.opaqueCode !== undefined ||
        facts.executes.length > 0 ||
        DYNAMIC_SQL_FUNCTIONS.some((f) => facts.identifiers.has(f))
      ) {
        return 'other';
      }
    }
    return undefined;
  }

  /**
   * Checks a SQL string (a Query's text or a Parse's statement). `prepared` holds the names of
   * statements prepared with SQL PREPARE that passed these guardrails.
   */
  check(sql: string, prepared: ReadonlySet<string>): Verdict {
    if (this.parse === undefined) {
      if (!this.needed) return { allowed: true, statements: [] };
      return {
        allowed: false,
        denial: denial('the SQL parser is not available', 'parser-unavailable'),
      };
    }
    let statements: readonly StatementFacts[];
    try {
      statements = this.analyses.analyze(this.parse, sql, this.maskedColumns, this.maskedKey);
    } catch (err) {
      if (!this.needed) return { allowed: true, statements: [] };
      const message = err instanceof Error ? err.message : String(err);
      return {
        allowed: false,
        denial: denial(`hoop could not parse it: ${message}`, 'parse-error'),
      };
    }
    if (this.rules.has('multi-statement') && statements.length > 1) {
      return {
        allowed: false,
        denial: denial(
          `${statements.length} statements in one query are not allowed`,
          'multi-statement',
        ),
      };
    }
    for (const facts of statements) {
      const found = this.checkStatement(facts, prepared);
      if (found !== undefined) return { allowed: false, denial: found };
    }
    return { allowed: true, statements };
  }

  private checkStatement(facts: StatementFacts, prepared: ReadonlySet<string>): Denial | undefined {
    for (const kind of facts.kinds) {
      if (this.kinds.has(kind)) {
        return denial(`${kind} statements are not allowed`, `statements: ${kind}`);
      }
    }
    if (this.rules.has('delete-without-where') && facts.deleteWithoutWhere) {
      return denial('DELETE without WHERE is not allowed', 'delete-without-where');
    }
    if (this.rules.has('update-without-where') && facts.updateWithoutWhere) {
      return denial('UPDATE without WHERE is not allowed', 'update-without-where');
    }
    if (this.rules.has('copy-program') && facts.copy?.program === true) {
      return denial('COPY to or from a program is not allowed', 'copy-program');
    }
    for (const name of this.functions) {
      if (facts.identifiers.has(name)) {
        return denial(`function ${name} is not allowed`, `functions: ${name}`);
      }
    }
    if (this.active) {
      if (facts.opaqueCode !== undefined) {
        return denial(
          `${facts.opaqueCode} runs SQL hoop cannot inspect, and guardrails are configured`,
          'dynamic-sql',
        );
      }
      for (const name of DYNAMIC_SQL_FUNCTIONS) {
        if (facts.identifiers.has(name)) {
          return denial(
            `function ${name} runs SQL given as text, which hoop cannot inspect`,
            'dynamic-sql',
          );
        }
      }
      for (const name of facts.executes) {
        if (!prepared.has(name)) {
          return denial(
            `EXECUTE of prepared statement "${name}", which hoop did not see prepared`,
            'dynamic-sql',
          );
        }
      }
    }
    if (facts.derivedMaskedUse !== undefined) {
      return denial(
        `${facts.derivedMaskedUse} is masked and may only be selected as a plain column, not inside an expression`,
        'masking: derived',
      );
    }
    const copy = facts.copy;
    if (this.maskingActive && copy !== undefined && !copy.from && copy.stdio) {
      if (copy.format === 'binary') {
        return denial('binary COPY output cannot be masked', 'masking: copy');
      }
      if (copy.otherOptions.length > 0) {
        return denial(
          `COPY output with option ${copy.otherOptions.join(', ')} cannot be masked`,
          'masking: copy',
        );
      }
      for (const table of facts.relations) {
        if (this.maskedTables.has(table)) {
          return denial(
            `COPY of table ${table}, which has masked columns, cannot be masked by column`,
            'masking: copy',
          );
        }
      }
    }
    return undefined;
  }
}
