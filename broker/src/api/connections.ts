/**
 * /api/v1/connections: targets reachable through an agent. A stored password is accepted on
 * create and never returned; responses say only `credential: stored | none | ref:env:NAME`.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { type ApiDeps, authenticate, requireAdmin, stringField } from './context.js';

export function connectionRoutes(router: Router, deps: ApiDeps): void {
  const withStatus = <T extends { agentId: string }>(c: T) => ({
    ...c,
    agentOnline: deps.hub.isAgentOnline(c.agentId),
  });

  router.add('GET', '/api/v1/connections', async ({ req }) => {
    await authenticate(deps, req);
    return { body: (await deps.store.listConnections()).map(withStatus) };
  });

  router.add('POST', '/api/v1/connections', async (ctx) => {
    await requireAdmin(deps, ctx.req);
    const body = await ctx.body();
    const port = body['port'];
    if (typeof port !== 'number')
      throw new HoopError('INVALID_REQUEST', 'field "port" must be a number');
    const password = stringField(body, 'password');
    const passwordRef = stringField(body, 'passwordRef');
    const tls = stringField(body, 'tls');
    const created = await deps.store.createConnection({
      name: stringField(body, 'name', true),
      agent: stringField(body, 'agent', true),
      type: stringField(body, 'type', true),
      host: stringField(body, 'host', true),
      port,
      user: stringField(body, 'user', true),
      database: stringField(body, 'database', true),
      ...(tls === undefined ? {} : { tls }),
      ...(password === undefined ? {} : { password }),
      ...(passwordRef === undefined ? {} : { passwordRef }),
    });
    return { status: 201, body: withStatus(created) };
  });

  router.add('GET', '/api/v1/connections/:name', async ({ req, params }) => {
    await authenticate(deps, req);
    return { body: withStatus(await deps.store.getConnection(params['name'] as string)) };
  });

  router.add('DELETE', '/api/v1/connections/:name', async ({ req, params }) => {
    await requireAdmin(deps, req);
    await deps.store.deleteConnection(params['name'] as string);
    return { body: { deleted: params['name'] } };
  });
}

export function policyRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/api/v1/connections/:name/policy', async ({ req, params }) => {
    await authenticate(deps, req);
    return { body: await deps.store.getConnectionPolicy(params['name'] as string) };
  });

  router.add('PUT', '/api/v1/connections/:name/policy', async (ctx) => {
    await requireAdmin(deps, ctx.req);
    return {
      body: await deps.store.setConnectionPolicy(ctx.params['name'] as string, await ctx.body()),
    };
  });
}
