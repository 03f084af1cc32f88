/**
 * /api/v1/users: people. Local users (password hashed with scrypt) are created by an admin;
 * OIDC users appear on their first login. Disabling a user ends their live sessions at once.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { hashPassword, validatePassword } from '../identity/password.js';
import {
  createIdentity,
  getIdentity,
  listIdentities,
  setIdentityDisabled,
  validateGroups,
} from '../store/users.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

export function userRoutes(router: Router, deps: ApiDeps): void {
  const ctx = deps.store.context;

  router.add('GET', '/api/v1/users', async ({ req }) => {
    await requireAdmin(deps, req);
    return { body: await listIdentities(ctx, 'person') };
  });

  router.add('GET', '/api/v1/users/:name', async ({ req, params }) => {
    await requireAdmin(deps, req);
    return { body: await getIdentity(ctx, params['name'] as string, 'person') };
  });

  router.add('POST', '/api/v1/users', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const role = stringField(body, 'role') ?? 'user';
    if (role !== 'admin' && role !== 'user') {
      throw new HoopError('INVALID_REQUEST', 'field "role" must be admin or user');
    }
    const password = body['password'];
    const passwordHash =
      password === undefined || password === null
        ? undefined
        : await hashPassword(validatePassword(password));
    const created = await createIdentity(ctx, {
      name: stringField(body, 'name', true),
      role,
      kind: 'person',
      groups: validateGroups(body['groups']),
      passwordHash,
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: created.name,
      detail: { change: 'user.create', role, groups: created.groups, login: created.login },
    });
    return { status: 201, body: created };
  });

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    router.add('POST', `/api/v1/users/:name/${verb}`, async ({ req, params }) => {
      const caller = await requireAdmin(deps, req);
      const name = params['name'] as string;
      if (disabled && name === caller.name) {
        throw new HoopError('INVALID_REQUEST', 'you cannot disable yourself');
      }
      const user = await setIdentityDisabled(ctx, name, disabled, 'person');
      const ended = disabled
        ? deps.hub.terminateSessions(
            { userId: user.id },
            new HoopError('AUTH_INVALID_TOKEN', `user ${user.name} was disabled`),
          )
        : 0;
      await deps.audit({
        type: 'admin-change',
        actor: caller.name,
        subject: user.name,
        detail: { change: `user.${verb}`, sessionsEnded: ended },
      });
      return { body: { ...user, sessionsEnded: ended } };
    });
  }
}
