/** Agents: registered by name, authenticated by a `hoop_at_…` token stored as sha256 only. */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { asc, eq } from 'drizzle-orm';
import { guard, mapViolation, nowOf, type StoreContext } from './context.js';
import { SqlState } from './db-errors.js';
import { type AgentInfo, toAgentInfo } from './records.js';
import { agents, connections } from './schema.js';
import { generateToken, hashToken } from './tokens.js';
import { validateName } from './validation.js';

export function agentNotFound(name: string): HoopError {
  return new HoopError('AGENT_NOT_FOUND', `No agent named "${name}".`);
}

function agentInUse(name: string, connectionNames: readonly string[]): HoopError {
  const which = connectionNames.length > 0 ? ` (${connectionNames.join(', ')})` : '';
  return new HoopError('INVALID_REQUEST', `Agent "${name}" is still used by connections${which}.`, {
    hint: 'Delete those connections first with `hoop admin connections delete NAME`, then delete the agent.',
  });
}

export async function createAgent(
  ctx: StoreContext,
  name: string,
): Promise<{ agent: AgentInfo; token: string }> {
  const agentName = validateName('agent', name);
  const token = generateToken('hoop_at');
  return guard('create agent', async () => {
    try {
      const [row] = await ctx.db
        .insert(agents)
        .values({
          id: randomUUID(),
          name: agentName,
          tokenHash: hashToken(token),
          createdAt: nowOf(ctx),
        })
        .returning();
      return { agent: toAgentInfo(row!), token };
    } catch (err) {
      mapViolation(
        err,
        SqlState.uniqueViolation,
        () => new HoopError('ALREADY_EXISTS', `An agent named "${agentName}" already exists.`),
      );
    }
  });
}

export async function authenticateAgent(
  ctx: StoreContext,
  token: string,
): Promise<AgentInfo | undefined> {
  if (typeof token !== 'string' || token.length === 0) return undefined;
  const tokenHash = hashToken(token);
  return guard('authenticate agent', async () => {
    const [row] = await ctx.db
      .select()
      .from(agents)
      .where(eq(agents.tokenHash, tokenHash))
      .limit(1);
    return row === undefined ? undefined : toAgentInfo(row);
  });
}

export async function listAgents(ctx: StoreContext): Promise<AgentInfo[]> {
  return guard('list agents', async () => {
    const rows = await ctx.db.select().from(agents).orderBy(asc(agents.name));
    return rows.map(toAgentInfo);
  });
}

export async function getAgent(ctx: StoreContext, name: string): Promise<AgentInfo> {
  return guard('get agent', async () => {
    const [row] = await ctx.db.select().from(agents).where(eq(agents.name, name)).limit(1);
    if (row === undefined) throw agentNotFound(name);
    return toAgentInfo(row);
  });
}

export async function deleteAgent(ctx: StoreContext, name: string): Promise<void> {
  await guard('delete agent', async () => {
    const [agent] = await ctx.db
      .select({ id: agents.id })
      .from(agents)
      .where(eq(agents.name, name))
      .limit(1);
    if (agent === undefined) throw agentNotFound(name);
    const used = await ctx.db
      .select({ name: connections.name })
      .from(connections)
      .where(eq(connections.agentId, agent.id))
      .orderBy(asc(connections.name));
    if (used.length > 0) {
      throw agentInUse(
        name,
        used.map((c) => c.name),
      );
    }
    try {
      await ctx.db.delete(agents).where(eq(agents.id, agent.id));
    } catch (err) {
      // a connection was created for this agent between the check and the delete (restrict FK)
      mapViolation(err, SqlState.foreignKeyViolation, () => agentInUse(name, []));
    }
  });
}

export async function touchAgent(ctx: StoreContext, id: string): Promise<void> {
  await guard('touch agent', async () => {
    await ctx.db
      .update(agents)
      .set({ lastSeenAt: nowOf(ctx) })
      .where(eq(agents.id, id));
  });
}
