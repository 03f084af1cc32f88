/**
 * What a SQL string does, read from PostgreSQL's own parse tree (libpg-query, WASM): statement
 * kinds (including statements nested in CTEs, PREPARE, EXPLAIN, CREATE … AS, rules and
 * SQL-standard function bodies), DELETE/UPDATE without WHERE, identifiers that can name a
 * function, COPY details, PREPARE/EXECUTE/DEALLOCATE names and transaction control. Guardrails
 * decide on these facts, never on the text.
 */

import type { StatementKind } from '@hoop/shared';
import { loadModule, parseSync } from 'libpg-query';

/** Parses SQL into libpg-query's JSON tree; throws with the parser's message on a syntax error. */
import { derivedMaskedUse, type MaskedColumnRef } from './masked-refs.js';

export type SqlParse = (sql: string) => { stmts?: Array<{ stmt?: unknown }> };

let loading: Promise<SqlParse> | undefined;

/** Loads the WASM parser once per process; rejects when it cannot be loaded. */
export function loadSqlParser(): Promise<SqlParse> {
  loading ??= loadModule().then(() => parseSync as unknown as SqlParse);
  return loading;
}

export type TransactionAction =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'rollback-to'
  | 'savepoint'
  | 'release'
  | 'prepare-transaction'
  | 'other';

export interface CopyFacts {
  readonly from: boolean;
  readonly program: boolean;
  /** No file and no program: STDOUT / STDIN. */
  readonly stdio: boolean;
  readonly format: 'text' | 'csv' | 'binary';
  /** Option names other than format and header (delimiter, quote, escape, …). */
  readonly otherOptions: readonly string[];
  /** The table copied (lower case, unqualified), when not a query. */
  readonly relation: string | undefined;
}

/** Facts about one top-level statement and everything nested in it. */
export interface StatementFacts {
  /** Kind of the top-level statement. */
  readonly kind: StatementKind;
  /** Every kind found, nested ones included. */
  readonly kinds: Set<StatementKind>;
  /** Every identifier outside string constants, lower case (function names are among them). */
  readonly identifiers: Set<string>;
  /** Every relation name referenced (lower case, unqualified). */
  readonly relations: Set<string>;
  deleteWithoutWhere: boolean;
  updateWithoutWhere: boolean;
  /** A DO block, or a function body hoop cannot parse. */
  opaqueCode: string | undefined;
  copy: CopyFacts | undefined;
  /** PREPARE name AS … (name lower case) */
  prepare: string | undefined;
  /** EXECUTE name */
  readonly executes: string[];
  /** DEALLOCATE name, or '*' for ALL */
  deallocate: string | undefined;
  transaction: TransactionAction | undefined;
  /** A masked column used inside a returned expression (see masked-refs.ts), when any. */
  derivedMaskedUse: string | undefined;
}

const fixedKinds: Record<string, StatementKind> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  CopyStmt: 'copy',
  DoStmt: 'do',
  CallStmt: 'call',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  VariableSetStmt: 'set',
  VacuumStmt: 'vacuum',
  LockStmt: 'lock',
  ListenStmt: 'listen',
  UnlistenStmt: 'listen',
  NotifyStmt: 'notify',
  TransactionStmt: 'transaction',
  ViewStmt: 'create',
  IndexStmt: 'create',
  RuleStmt: 'create',
  DefineStmt: 'create',
  CompositeTypeStmt: 'create',
  CreatedbStmt: 'create',
  ImportForeignSchemaStmt: 'create',
  RenameStmt: 'alter',
  ReassignOwnedStmt: 'alter',
  CommentStmt: 'alter',
  SecLabelStmt: 'alter',
  AlterSystemStmt: 'alter',
};

/** The StatementKind of a parse node name, or undefined when it is not a statement node. */
export function kindOfNode(name: string, node: Record<string, unknown>): StatementKind | undefined {
  if (name === 'GrantStmt' || name === 'GrantRoleStmt') {
    return node['is_grant'] === true ? 'grant' : 'revoke';
  }
  if (name === 'SelectStmt' && node['intoClause'] !== undefined) return 'create';
  const fixed = fixedKinds[name];
  if (fixed !== undefined) return fixed;
  if (!name.endsWith('Stmt')) return undefined;
  if (name.startsWith('Create')) return 'create';
  if (name.startsWith('Alter')) return 'alter';
  if (name.startsWith('Drop')) return 'drop';
  return 'other';
}

const transactionKinds: Record<string, TransactionAction> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_ROLLBACK_TO: 'rollback-to',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_PREPARE: 'prepare-transaction',
};

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  if (isNode(value) && isNode(value['String'])) {
    const s = value['String']['sval'];
    return typeof s === 'string' ? s : undefined;
  }
  return undefined;
}

function defElems(list: unknown): Array<{ name: string; arg: unknown }> {
  if (!Array.isArray(list)) return [];
  const out: Array<{ name: string; arg: unknown }> = [];
  for (const item of list) {
    if (isNode(item) && isNode(item['DefElem'])) {
      const d = item['DefElem'];
      out.push({ name: String(d['defname'] ?? '').toLowerCase(), arg: d['arg'] });
    }
  }
  return out;
}

/** Nesting limit of the walk (the parser's own stack depth is bounded too). */
const MAX_DEPTH = 10_000;

class Walker {
  constructor(
    private readonly facts: StatementFacts,
    private readonly parse: SqlParse,
  ) {}

  walk(value: unknown, depth: number): void {
    if (depth > MAX_DEPTH) throw new Error('statement nests too deeply');
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, depth + 1);
      return;
    }
    if (!isNode(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'A_Const') continue; // literal values are not identifiers
      if (key === 'String' && isNode(child) && typeof child['sval'] === 'string') {
        this.facts.identifiers.add(child['sval'].toLowerCase());
        continue;
      }
      if (key === 'relation' && isNode(child) && typeof child['relname'] === 'string') {
        this.facts.relations.add(child['relname'].toLowerCase());
      }
      if (isNode(child) && /^[A-Z]/.test(key)) this.visit(key, child);
      this.walk(child, depth + 1);
    }
  }

  private visit(name: string, node: Node): void {
    const { facts } = this;
    const kind = kindOfNode(name, node);
    if (kind !== undefined) facts.kinds.add(kind);
    switch (name) {
      case 'RangeVar':
        if (typeof node['relname'] === 'string') facts.relations.add(node['relname'].toLowerCase());
        break;
      case 'DeleteStmt':
        if (node['whereClause'] === undefined) facts.deleteWithoutWhere = true;
        break;
      case 'UpdateStmt':
        if (node['whereClause'] === undefined) facts.updateWithoutWhere = true;
        break;
      case 'DoStmt':
        facts.opaqueCode ??= 'a DO block';
        break;
      case 'CreateFunctionStmt':
        this.functionBody(node);
        break;
      case 'ExecuteStmt':
        if (typeof node['name'] === 'string') facts.executes.push(node['name'].toLowerCase());
        break;
      case 'CopyStmt':
        facts.copy ??= copyFacts(node);
        break;
    }
  }

  /** SQL function bodies given as strings are parsed and merged; other languages are opaque. */
  private functionBody(node: Node): void {
    if (node['sql_body'] !== undefined) return; // BEGIN ATOMIC: already part of the tree
    const options = defElems(node['options']);
    const language = str(options.find((o) => o.name === 'language')?.arg)?.toLowerCase();
    const as = options.find((o) => o.name === 'as')?.arg;
    const items = isNode(as) && isNode(as['List']) ? as['List']['items'] : undefined;
    const body = Array.isArray(items) ? str(items[0]) : undefined;
    if (language === 'sql' && body !== undefined) {
      try {
        const tree = this.parse(body);
        this.walk(tree.stmts ?? [], 1);
        return;
      } catch {
        // fall through: an unparseable body is opaque
      }
    }
    this.facts.opaqueCode ??= `a ${language ?? 'non-SQL'} function body`;
  }
}

function copyFacts(node: Node): CopyFacts {
  let format: CopyFacts['format'] = 'text';
  const otherOptions: string[] = [];
  for (const option of defElems(node['options'])) {
    if (option.name === 'format') {
      const value = str(option.arg)?.toLowerCase();
      format = value === 'csv' ? 'csv' : value === 'binary' ? 'binary' : 'text';
    } else if (option.name !== 'header') {
      otherOptions.push(option.name);
    }
  }
  const relation = isNode(node['relation']) ? node['relation']['relname'] : undefined;
  return {
    from: node['is_from'] === true,
    program: node['is_program'] === true,
    stdio: node['filename'] === undefined,
    format,
    otherOptions,
    relation: typeof relation === 'string' ? relation.toLowerCase() : undefined,
  };
}

/** Facts for each top-level statement of `sql`; throws the parser's error on a syntax error. */
export function analyzeSql(
  parse: SqlParse,
  sql: string,
  masked: readonly MaskedColumnRef[] = [],
): StatementFacts[] {
  const tree = parse(sql);
  const out: StatementFacts[] = [];
  for (const raw of tree.stmts ?? []) {
    const stmt = raw.stmt;
    if (!isNode(stmt)) continue;
    const [name, node] = Object.entries(stmt)[0] ?? [];
    if (name === undefined || !isNode(node)) continue;
    const facts: StatementFacts = {
      kind: kindOfNode(name, node) ?? 'other',
      kinds: new Set(),
      identifiers: new Set(),
      relations: new Set(),
      deleteWithoutWhere: false,
      updateWithoutWhere: false,
      opaqueCode: undefined,
      copy: undefined,
      prepare: undefined,
      executes: [],
      deallocate: undefined,
      transaction: undefined,
      derivedMaskedUse: derivedMaskedUse(stmt, masked),
    };
    if (name === 'PrepareStmt' && typeof node['name'] === 'string') {
      facts.prepare = node['name'].toLowerCase();
    }
    if (name === 'DeallocateStmt') {
      facts.deallocate =
        node['isall'] === true ? '*' : String(node['name'] ?? '*').toLowerCase() || '*';
    }
    if (name === 'TransactionStmt') {
      facts.transaction = transactionKinds[String(node['kind'])] ?? 'other';
    }
    new Walker(facts, parse).walk(stmt, 0);
    out.push(facts);
  }
  return out;
}
