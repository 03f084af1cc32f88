/**
 * /api/v1/access: access rules, group → (connection | tag) → actions. Admins need none; a
 * connection no rule lets a caller use is neither listed nor usable for them.
 */
import type { Router } from '../http/router.js';
import { allowAccess, listAccessRules, revokeAccess } from '../store/access.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

export function accessRoutes(router: Router, deps: ApiDeps): void {
  const ctx = deps.store.context;

  router.add('GET', '/api/v1/access', async ({ req, query }) => {
    await requireAdmin(deps, req);
    return { body: await listAccessRules(ctx, query.get('group') ?? undefined) };
  });

  router.add('POST', '/api/v1/access/allow', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const rule = await allowAccess(ctx, {
      group: stringField(body, 'group', true),
      connection: stringField(body, 'connection'),
      tag: stringField(body, 'tag'),
      actions: body['actions'],
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: rule.group,
      detail: { change: 'access.allow', rule },
    });
    return { status: 201, body: rule };
  });

  router.add('POST', '/api/v1/access/revoke', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const result = await revokeAccess(ctx, {
      group: stringField(body, 'group', true),
      connection: stringField(body, 'connection'),
      tag: stringField(body, 'tag'),
      ...(body['actions'] === undefined ? {} : { actions: body['actions'] }),
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: result.removed.group,
      detail: { change: 'access.revoke', before: result.removed, after: result.remaining },
    });
    return { body: result };
  });
}
