/**
 * Access rules: a group may perform actions on a connection, named directly or through one of
 * its tags. The authorizer (identity/authorizer.ts) reads them; admins need none.
 */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import { guard, noteConnectionChange, nowOf, type StoreContext } from './context.js';
import { type AccessRuleRow, accessRules, connections } from './schema.js';
import { validateGroupName } from './users.js';
import { validateName } from './validation.js';

/** Actions a rule may grant; `approve` and `audit` are reserved for reviews and the audit log. */
export const ruleActions = ['connect', 'exec', 'approve', 'audit'] as const;
export type RuleAction = (typeof ruleActions)[number];

export interface AccessRuleInfo {
  readonly id: string;
  readonly group: string;
  readonly connection: string | null;
  readonly tag: string | null;
  readonly actions: readonly string[];
  readonly createdAt: string;
}

export interface AccessRuleInput {
  group: string;
  connection?: string | undefined;
  tag?: string | undefined;
}

const TAG_PATTERN = /^[a-z0-9][a-z0-9_.:=-]{0,62}$/;
const MAX_TAGS = 32;

export function validateTag(value: unknown): string {
  if (typeof value !== 'string' || !TAG_PATTERN.test(value)) {
    const shown = typeof value === 'string' ? ` "${value.slice(0, 80)}"` : '';
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid tag${shown}: use 1-63 characters from a-z, 0-9, "_", ".", ":", "=" and "-".`,
    );
  }
  return value;
}

export function validateActions(value: unknown): RuleAction[] {
  const list = typeof value === 'string' ? value.split(',').map((a) => a.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new HoopError(
      'INVALID_REQUEST',
      `actions must be a non-empty list of ${ruleActions.join(', ')}`,
    );
  }
  for (const action of list) {
    if (!(ruleActions as readonly unknown[]).includes(action)) {
      throw new HoopError(
        'INVALID_REQUEST',
        `Unknown action "${String(action).slice(0, 40)}": expected ${ruleActions.join(', ')} (admin is a role, not an action).`,
      );
    }
  }
  return [...new Set(list as RuleAction[])];
}

function target(input: AccessRuleInput): { connection: string | null; tag: string | null } {
  const hasConnection = input.connection !== undefined && input.connection !== null;
  const hasTag = input.tag !== undefined && input.tag !== null;
  if (hasConnection === hasTag) {
    throw new HoopError('INVALID_REQUEST', 'give exactly one of connection or tag');
  }
  return hasConnection
    ? { connection: validateName('connection', input.connection), tag: null }
    : { connection: null, tag: validateTag(input.tag) };
}

function toInfo(row: AccessRuleRow): AccessRuleInfo {
  return {
    id: row.id,
    group: row.groupName,
    connection: row.connectionName,
    tag: row.tag,
    actions: row.actions,
    createdAt: row.createdAt.toISOString(),
  };
}

function sameTarget(t: { connection: string | null; tag: string | null }) {
  return and(
    t.connection === null
      ? isNull(accessRules.connectionName)
      : eq(accessRules.connectionName, t.connection),
    t.tag === null ? isNull(accessRules.tag) : eq(accessRules.tag, t.tag),
  );
}

/**
 * Allows a group actions on a connection or tag. A rule for the same group and target gains the
 * actions (one rule per group and target), so `allow` is idempotent.
 */
export async function allowAccess(
  ctx: StoreContext,
  input: AccessRuleInput & { actions: unknown },
): Promise<AccessRuleInfo> {
  const group = validateGroupName(input.group);
  const t = target(input);
  const actions = validateActions(input.actions);
  return guard('allow access', async () =>
    ctx.db.transaction(async (tx) => {
      const [existing] = await tx
        .select()
        .from(accessRules)
        .where(and(eq(accessRules.groupName, group), sameTarget(t)))
        .limit(1);
      if (existing !== undefined) {
        const merged = [...new Set([...existing.actions, ...actions])];
        const [row] = await tx
          .update(accessRules)
          .set({ actions: merged })
          .where(eq(accessRules.id, existing.id))
          .returning();
        return toInfo(row!);
      }
      const [row] = await tx
        .insert(accessRules)
        .values({
          id: randomUUID(),
          groupName: group,
          connectionName: t.connection,
          tag: t.tag,
          actions,
          createdAt: nowOf(ctx),
        })
        .returning();
      return toInfo(row!);
    }),
  );
}

/**
 * Takes actions away from a group on a connection or tag (all of them when `actions` is
 * omitted); a rule left with no action is deleted. NOT_FOUND when there is no such rule.
 */
export async function revokeAccess(
  ctx: StoreContext,
  input: AccessRuleInput & { actions?: unknown },
): Promise<{ removed: AccessRuleInfo; remaining: AccessRuleInfo | null }> {
  const group = validateGroupName(input.group);
  const t = target(input);
  const actions = input.actions === undefined ? undefined : validateActions(input.actions);
  return guard('revoke access', async () =>
    ctx.db.transaction(async (tx) => {
      const [existing] = await tx
        .select()
        .from(accessRules)
        .where(and(eq(accessRules.groupName, group), sameTarget(t)))
        .limit(1);
      if (existing === undefined) {
        throw new HoopError(
          'NOT_FOUND',
          `No access rule for group "${group}" on that ${t.tag === null ? 'connection' : 'tag'}.`,
        );
      }
      const left =
        actions === undefined
          ? []
          : existing.actions.filter((a) => !actions.includes(a as RuleAction));
      if (left.length === 0) {
        await tx.delete(accessRules).where(eq(accessRules.id, existing.id));
        return { removed: toInfo(existing), remaining: null };
      }
      const [row] = await tx
        .update(accessRules)
        .set({ actions: left })
        .where(eq(accessRules.id, existing.id))
        .returning();
      return { removed: toInfo(existing), remaining: toInfo(row!) };
    }),
  );
}

export async function listAccessRules(
  ctx: StoreContext,
  group?: string,
): Promise<AccessRuleInfo[]> {
  return guard('list access rules', async () => {
    const rows = await ctx.db
      .select()
      .from(accessRules)
      .where(group === undefined ? undefined : eq(accessRules.groupName, group))
      .orderBy(asc(accessRules.groupName), asc(accessRules.createdAt), asc(accessRules.id));
    return rows.map(toInfo);
  });
}

/** The rules of any of these groups (what the authorizer needs for one caller). */
export async function rulesForGroups(
  ctx: StoreContext,
  groups: readonly string[],
): Promise<AccessRuleInfo[]> {
  if (groups.length === 0) return [];
  return guard('read access rules', async () => {
    const rows = await ctx.db
      .select()
      .from(accessRules)
      .where(inArray(accessRules.groupName, [...groups]));
    return rows.map(toInfo);
  });
}

/** Every connection's tags, by connection name. */
export async function connectionTags(ctx: StoreContext): Promise<Map<string, string[]>> {
  return guard('read connection tags', async () => {
    const rows = await ctx.db
      .select({ name: connections.name, tags: connections.tags })
      .from(connections);
    return new Map(rows.map((r) => [r.name, r.tags ?? []]));
  });
}

export function validateTags(tags: unknown): string[] {
  if (!Array.isArray(tags) || tags.length > MAX_TAGS) {
    throw new HoopError('INVALID_REQUEST', `tags must be a list of at most ${MAX_TAGS} tags`);
  }
  return [...new Set(tags.map(validateTag))];
}

/** Sets a connection's tags (CONNECTION_NOT_FOUND if none). */
export async function setConnectionTags(
  ctx: StoreContext,
  name: string,
  tags: unknown,
): Promise<string[]> {
  const valid = validateTags(tags);
  return guard('set connection tags', async () => {
    const [row] = await ctx.db
      .update(connections)
      .set({ tags: valid, updatedAt: nowOf(ctx) })
      .where(eq(connections.name, name))
      .returning({ tags: connections.tags });
    if (row === undefined) {
      throw new HoopError('CONNECTION_NOT_FOUND', `No connection named "${name}".`);
    }
    noteConnectionChange(ctx);
    return row.tags;
  });
}
