/** /api/v1/agents: register agents (the token is shown once), list them with their status. */
import type { Router } from '../http/router.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

export function agentRoutes(router: Router, deps: ApiDeps): void {
  const withStatus = <T extends { id: string }>(agent: T) => ({
    ...agent,
    online: deps.hub.isAgentOnline(agent.id),
  });

  router.add('GET', '/api/v1/agents', async ({ req }) => {
    await requireAdmin(deps, req);
    return { body: (await deps.store.listAgents()).map(withStatus) };
  });

  router.add('POST', '/api/v1/agents', async (ctx) => {
    await requireAdmin(deps, ctx.req);
    const name = stringField(await ctx.body(), 'name', true);
    const { agent, token } = await deps.store.createAgent(name);
    return { status: 201, body: { ...withStatus(agent), token } };
  });

  router.add('GET', '/api/v1/agents/:name', async ({ req, params }) => {
    await requireAdmin(deps, req);
    return { body: withStatus(await deps.store.getAgent(params['name'] as string)) };
  });

  router.add('DELETE', '/api/v1/agents/:name', async ({ req, params }) => {
    await requireAdmin(deps, req);
    await deps.store.deleteAgent(params['name'] as string);
    return { body: { deleted: params['name'] } };
  });
}
