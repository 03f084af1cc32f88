/**
 * A bounded, process-wide cache of `analyzeSql` results. Parsing (libpg-query in WASM, its JSON
 * tree, the walks over it) is most of what a policy costs per statement, and applications send
 * the same statements again and again — often differing only in numeric literals
 * (`… WHERE aid = 4711`), which change nothing guardrails or masking decide on.
 *
 * Key: the statement's *literal shape* — when the text holds no string, quoted identifier,
 * dollar quote, parameter, escape or comment (no `'`, `"`, `$`, `\`, `--`, `/*`), every
 * stand-alone numeric literal is replaced by a token of the same lexical class: `0` for an
 * integer of at most 9 digits (always an ICONST to PostgreSQL's lexer), `0.0` for `digits.digits`
 * (always an FCONST). Anything else (exponents, hex, underscores, longer integers, a digit run
 * touching an identifier, a dot or a `$`) is kept verbatim. So two texts share a key only when
 * PostgreSQL's grammar sees the same token sequence up to the values of plain numeric constants,
 * and no fact in StatementFacts depends on such a value. Texts with any of the excluded
 * characters are keyed by their exact text (which always holds one of those characters, so it
 * can never equal a shape). Only successful analyses are cached; a parse error is parsed again.
 *
 * The masked-column list is part of the key (derivedMaskedUse depends on it). Cached facts are
 * shared between sessions and frozen: callers only read them.
 */
import type { MaskedColumnRef } from './masked-refs.js';
import { analyzeSql, type SqlParse, type StatementFacts } from './sql.js';

export interface AnalysisCacheOptions {
  /** Entries kept (least recently used dropped first). */
  readonly maxEntries: number;
  /** Longer texts are analysed every time and not kept. */
  readonly maxTextChars: number;
}

export const ANALYSIS_CACHE_DEFAULTS: AnalysisCacheOptions = {
  maxEntries: 2048,
  maxTextChars: 4096,
};

/** Characters that open strings, quoted identifiers, parameters, escapes or comments. */
const UNSAFE = /['"$\\]|--|\/\*/;
/** A digit run not glued to an identifier, dot or digit on either side; optional `.digits`. */
const NUMBER = /(?<![\w.\u0080-\uffff])(\d+)(\.\d+)?(?![\w.\u0080-\uffff])/g;

/** The literal shape of `sql` (see the header), or the text itself when it cannot be shaped. */
export function literalShape(sql: string): string {
  if (UNSAFE.test(sql)) return sql;
  return sql.replace(NUMBER, (whole: string, int: string, fraction: string | undefined) => {
    if (fraction !== undefined) return '0.0';
    return int.length <= 9 ? '0' : whole;
  });
}

export class AnalysisCache {
  private readonly entries = new Map<string, readonly StatementFacts[]>();
  hits = 0;
  misses = 0;

  constructor(private readonly options: AnalysisCacheOptions = ANALYSIS_CACHE_DEFAULTS) {}

  get size(): number {
    return this.entries.size;
  }

  /** analyzeSql(parse, sql, masked), from the cache when an equal shape was analysed before. */
  analyze(
    parse: SqlParse,
    sql: string,
    masked: readonly MaskedColumnRef[],
    maskedKey: string,
  ): readonly StatementFacts[] {
    if (sql.length > this.options.maxTextChars) return analyzeSql(parse, sql, masked);
    const key = `${maskedKey}\u0000${literalShape(sql)}`;
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      this.hits++;
      // Most recently used last: re-insert.
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    this.misses++;
    const facts = analyzeSql(parse, sql, masked).map(freezeFacts);
    Object.freeze(facts);
    this.entries.set(key, facts);
    if (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return facts;
  }
}

/** The masked-column part of a cache key. */
export function maskedKeyOf(masked: readonly MaskedColumnRef[]): string {
  return masked.map((m) => `${m.table}.${m.column}`).join(',');
}

function freezeFacts(facts: StatementFacts): StatementFacts {
  Object.freeze(facts.executes);
  if (facts.copy !== undefined) {
    Object.freeze(facts.copy.otherOptions);
    Object.freeze(facts.copy);
  }
  return Object.freeze(facts);
}

/** The cache every session of this process shares. */
export const sharedAnalysisCache = new AnalysisCache();
