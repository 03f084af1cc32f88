/** `hoop admin access allow|revoke|list`: which groups may do what on which connections. */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface RuleView {
  id: string;
  group: string;
  connection: string | null;
  tag: string | null;
  actions: string[];
  createdAt: string;
}

interface TargetOptions {
  group: string;
  connection?: string;
  tag?: string;
  actions?: string;
}

function target(opts: TargetOptions): Record<string, unknown> {
  if ((opts.connection === undefined) === (opts.tag === undefined)) {
    throw new HoopError('USAGE', 'give exactly one of --connection NAME or --tag T');
  }
  return {
    group: opts.group,
    ...(opts.connection === undefined ? { tag: opts.tag } : { connection: opts.connection }),
    ...(opts.actions === undefined
      ? {}
      : {
          actions: opts.actions
            .split(',')
            .map((a) => a.trim())
            .filter(Boolean),
        }),
  };
}

const view = (r: RuleView) => ({
  ...r,
  target: r.connection !== null ? `connection:${r.connection}` : `tag:${r.tag}`,
  actions: r.actions.join(','),
});

export function adminAccessCommand(admin: Command, ctx: () => CommandContext): void {
  const access = admin
    .command('access')
    .description('access rules: group → connection or tag → actions');

  access
    .command('allow')
    .description('let a group use a connection (or every connection with a tag)')
    .requiredOption('--group <group>', 'the group')
    .option('--connection <name>', 'a connection')
    .option('--tag <tag>', 'every connection with this tag')
    .requiredOption('--actions <list>', 'comma-separated: connect, exec (approve, audit reserved)')
    .action(async (opts: TargetOptions) => {
      const c = ctx();
      const rule = await (await c.api()).post<RuleView>('/api/v1/access/allow', target(opts));
      c.out.data(rule, () =>
        c.out.line(`Group ${rule.group} may ${rule.actions.join(', ')} on ${view(rule).target}.`),
      );
    });

  access
    .command('revoke')
    .description('take actions (all when --actions is omitted) away from a group')
    .requiredOption('--group <group>', 'the group')
    .option('--connection <name>', 'a connection')
    .option('--tag <tag>', 'a tag')
    .option('--actions <list>', 'comma-separated actions to take away (default: all)')
    .action(async (opts: TargetOptions) => {
      const c = ctx();
      const result = await (await c.api()).post<{ removed: RuleView; remaining: RuleView | null }>(
        '/api/v1/access/revoke',
        target(opts),
      );
      c.out.data(result, () =>
        c.out.line(
          result.remaining === null
            ? `Group ${opts.group} lost all access on ${view(result.removed).target}.`
            : `Group ${opts.group} may now ${result.remaining.actions.join(', ')} on ${view(result.remaining).target}.`,
        ),
      );
    });

  access
    .command('list')
    .option('--group <group>', 'only this group')
    .action(async (opts: { group?: string }) => {
      const c = ctx();
      const query = opts.group === undefined ? '' : `?group=${encodeURIComponent(opts.group)}`;
      const list = await (await c.api()).get<RuleView[]>(`/api/v1/access${query}`);
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No access rules: only admins can use connections.'
            : table(list.map(view) as never, ['group', 'target', 'actions', 'createdAt']),
        ),
      );
    });
}
