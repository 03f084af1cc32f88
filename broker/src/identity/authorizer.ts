/**
 * Who may do what on which connection: admins everything; a grant holder what the grant names on
 * its connection; everyone else what the access rules give one of their groups, on the
 * connection by name or through one of its tags.
 */

import { connectionTags, rulesForGroups } from '../store/access.js';
import type { StoreContext } from '../store/context.js';
import type { Authorizer, Caller } from './caller.js';

export function createAccessAuthorizer(ctx: StoreContext): Authorizer {
  return async (caller, connection, action) => {
    if (caller.grant !== undefined) {
      return caller.grant.connection === connection.name && caller.grant.actions.includes(action);
    }
    if (caller.role === 'admin') return true;
    const rules = (await rulesForGroups(ctx, caller.groups)).filter((r) =>
      r.actions.includes(action),
    );
    if (rules.some((r) => r.connection === connection.name)) return true;
    if (!rules.some((r) => r.tag !== null)) return false;
    const tags =
      connection.tags !== undefined && connection.tags.length > 0
        ? connection.tags
        : ((await connectionTags(ctx)).get(connection.name) ?? []);
    return rules.some((r) => r.tag !== null && tags.includes(r.tag));
  };
}

/** The names among `names` the caller may `connect` to (for listings), in their order. */
export async function visibleConnections<T extends { name: string }>(
  ctx: StoreContext,
  authorize: Authorizer,
  caller: Caller,
  list: readonly T[],
): Promise<T[]> {
  if (caller.role === 'admin' && caller.grant === undefined) return [...list];
  const tags = await connectionTags(ctx);
  const out: T[] = [];
  for (const item of list) {
    if (await authorize(caller, { name: item.name, tags: tags.get(item.name) ?? [] }, 'connect')) {
      out.push(item);
    }
  }
  return out;
}
