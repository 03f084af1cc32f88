/**
 * Masking by source column works because PostgreSQL tells the origin (table, column) of every
 * result column that is a plain column reference — through subqueries and CTEs too. A masked
 * column used inside an expression (`lower(email)`, `email || ''`, `reverse(email)`,
 * `encode(email::bytea, 'base64')`, `row_to_json(c)`, a scalar subquery …) loses that origin,
 * and value detectors cannot recognise every transformation. So when a policy masks columns,
 * a statement that puts a masked column (or a whole row of its table) into an expression whose
 * value is returned — a SELECT list or a RETURNING list — is denied (fail closed).
 * Uses in WHERE, JOIN, GROUP BY or ORDER BY return no values and stay allowed.
 */

type Node = Record<string, unknown>;

export interface MaskedColumnRef {
  /** lower case, unqualified */
  readonly table: string;
  /** lower case */
  readonly column: string;
}

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The names a masked table goes by in this statement: its own name and every alias. */
function tableNames(
  tree: unknown,
  masked: ReadonlySet<string>,
  out = new Map<string, string>(),
  depth = 0,
): Map<string, string> {
  if (depth > 10_000) return out;
  if (Array.isArray(tree)) {
    for (const item of tree) tableNames(item, masked, out, depth + 1);
    return out;
  }
  if (!isNode(tree)) return out;
  // A table appears as a RangeVar node, or (INSERT/UPDATE/DELETE targets) as a bare `relation`.
  const rv = isNode(tree['RangeVar']) ? tree['RangeVar'] : tree['relation'];
  if (isNode(rv) && typeof rv['relname'] === 'string') {
    const rel = rv['relname'].toLowerCase();
    if (masked.has(rel)) {
      out.set(rel, rel);
      const alias = isNode(rv['alias']) ? rv['alias']['aliasname'] : undefined;
      if (typeof alias === 'string') out.set(alias.toLowerCase(), rel);
    }
  }
  for (const child of Object.values(tree)) tableNames(child, masked, out, depth + 1);
  return out;
}

function fieldNames(ref: Node): Array<string | '*'> {
  const fields = Array.isArray(ref['fields']) ? ref['fields'] : [];
  return fields.map((f) => {
    if (isNode(f) && isNode(f['String']) && typeof f['String']['sval'] === 'string') {
      return f['String']['sval'].toLowerCase();
    }
    return '*';
  });
}

/**
 * Returns a description of the first masked column that a returned expression uses, or
 * undefined when every returned use keeps its origin.
 */
export function derivedMaskedUse(
  statement: unknown,
  masked: readonly MaskedColumnRef[],
): string | undefined {
  if (masked.length === 0) return undefined;
  const maskedTables = new Set(masked.map((m) => m.table));
  const names = tableNames(statement, maskedTables);
  if (names.size === 0) return undefined;
  const present = new Set(names.values());
  const columnsOf = (table: string) => masked.filter((m) => m.table === table).map((m) => m.column);

  /** What a ColumnRef names that is masked: a column, a whole row, or nothing. */
  const maskedRef = (ref: Node): string | undefined => {
    const f = fieldNames(ref);
    const last = f[f.length - 1];
    if (f.length === 1 && last !== undefined && last !== '*') {
      const table = names.get(last);
      if (table !== undefined && !masked.some((m) => m.column === last))
        return `the whole row of ${table}`;
      for (const table of present) if (columnsOf(table).includes(last)) return `${table}.${last}`;
      return undefined;
    }
    const qualifier = f[f.length - 2];
    const table =
      typeof qualifier === 'string' && qualifier !== '*' ? names.get(qualifier) : undefined;
    if (table === undefined) return undefined;
    if (last === '*') return undefined; // t.* as a plain target expands to columns with origins
    if (last !== undefined && columnsOf(table).includes(last)) return `${table}.${last}`;
    return undefined;
  };

  let found: string | undefined;
  /** `owner`: the parse-node type whose fields `value` holds (e.g. SelectStmt). */
  const walk = (value: unknown, inReturnedExpr: boolean, depth: number, owner = ''): void => {
    if (found !== undefined || depth > 10_000) return;
    if (Array.isArray(value)) {
      for (const item of value) walk(item, inReturnedExpr, depth + 1);
      return;
    }
    if (!isNode(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (found !== undefined) return;
      if (key === 'ColumnRef' && isNode(child)) {
        if (inReturnedExpr) found = maskedRef(child);
        continue;
      }
      // SELECT lists, and RETURNING (returningList before PostgreSQL 18, returningClause.exprs since).
      const returned =
        (key === 'targetList' && owner === 'SelectStmt') ||
        key === 'returningList' ||
        (key === 'exprs' && owner === 'returningClause');
      if (returned) {
        for (const item of Array.isArray(child) ? child : []) {
          const target = isNode(item) ? item['ResTarget'] : undefined;
          const val = isNode(target) ? target['val'] : undefined;
          const ref = isNode(val) ? val['ColumnRef'] : undefined;
          if (isNode(ref) && !inReturnedExpr) {
            // A plain column keeps its origin; a plain whole-row reference does not.
            const what = maskedRef(ref);
            if (what?.startsWith('the whole row')) found = what;
            continue;
          }
          walk(val, true, depth + 1);
        }
        continue;
      }
      walk(
        child,
        inReturnedExpr,
        depth + 1,
        /^[A-Z]/.test(key) || key === 'returningClause' ? key : '',
      );
    }
  };
  walk(statement, false, 0);
  return found;
}
