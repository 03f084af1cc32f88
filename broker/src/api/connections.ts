/**
 * /api/v1/connections: targets reachable through an agent. A stored password is accepted on
 * create and never returned; responses say only `credential: stored | none | ref:env:NAME`.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { visibleConnections } from '../identity/authorizer.js';
import { setConnectionTags, validateTags } from '../store/access.js';
import { connectionNotFound } from '../store/connections.js';
import { type ApiDeps, authenticate, requireAdmin, stringField } from './context.js';

export function connectionRoutes(router: Router, deps: ApiDeps): void {
  const withStatus = <T extends { agentId: string }>(c: T) => ({
    ...c,
    agentOnline: deps.hub.isAgentOnline(c.agentId),
  });

  router.add('GET', '/api/v1/connections', async ({ req }) => {
    const caller = await authenticate(deps, req);
    const all = await deps.store.listConnections();
    const visible = await visibleConnections(
      deps.store.context,
      deps.identity.authorize,
      caller,
      all,
    );
    return { body: visible.map(withStatus) };
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
    const tagList = body['tags'] === undefined ? [] : validateTags(body['tags']);
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
    const tags =
      tagList.length === 0
        ? []
        : await setConnectionTags(deps.store.context, created.name, tagList);
    return { status: 201, body: { ...withStatus(created), tags } };
  });

  router.add('GET', '/api/v1/connections/:name', async ({ req, params }) => {
    const caller = await authenticate(deps, req);
    const name = params['name'] as string;
    const [found] = await visibleConnections(deps.store.context, deps.identity.authorize, caller, [
      await deps.store.getConnection(name),
    ]);
    if (found === undefined) {
      throw connectionNotFound(name);
    }
    return { body: withStatus(found) };
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
