/** `hoop admin agents create|list|show|delete`. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface AgentView {
  id: string;
  name: string;
  online: boolean;
  createdAt: string;
  lastSeenAt: string | null;
  token?: string;
}

export function adminAgentsCommand(admin: Command, ctx: () => CommandContext): void {
  const agents = admin.command('agents').description('agents that run next to your targets');

  agents
    .command('create <name>')
    .description('register an agent and print its token (shown once)')
    .action(async (name: string) => {
      const c = ctx();
      const created = await (await c.api()).post<AgentView>('/api/v1/agents', { name });
      c.out.data({ name: created.name, token: created.token }, () => {
        c.out.line(`Agent ${created.name} created. Its token is shown only this once:`);
        c.out.line('');
        c.out.line(`  ${created.token}`);
        c.out.line('');
        c.out.line('Start it next to your targets:');
        c.out.line(
          `  HOOP_BROKER_URL=${c.env['HOOP_BROKER_URL'] ?? '<broker url>'} HOOP_AGENT_TOKEN=<token> hoop agent start`,
        );
      });
    });

  agents
    .command('list')
    .description('list agents and whether they are connected')
    .action(async () => {
      const c = ctx();
      const list = await (await c.api()).get<AgentView[]>('/api/v1/agents');
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No agents yet: hoop admin agents create NAME'
            : table(list as never, ['name', 'online', 'lastSeenAt', 'createdAt']),
        ),
      );
    });

  agents.command('show <name>').action(async (name: string) => {
    const c = ctx();
    const agent = await (await c.api()).get<AgentView>(
      `/api/v1/agents/${encodeURIComponent(name)}`,
    );
    c.out.data(agent, () =>
      c.out.line(table([agent as never], ['name', 'online', 'lastSeenAt', 'createdAt'])),
    );
  });

  agents.command('delete <name>').action(async (name: string) => {
    const c = ctx();
    const result = await (await c.api()).delete<{ deleted: string }>(
      `/api/v1/agents/${encodeURIComponent(name)}`,
    );
    c.out.data(result, () => c.out.line(`Agent ${name} deleted.`));
  });
}
