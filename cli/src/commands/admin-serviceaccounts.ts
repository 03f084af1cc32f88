/** `hoop admin serviceaccounts create|list|delete`: identities for machines (API keys, CI). */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';
import { collect } from './admin-users.js';

interface ServiceAccountView {
  name: string;
  role: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
}

export function adminServiceAccountsCommand(admin: Command, ctx: () => CommandContext): void {
  const accounts = admin
    .command('serviceaccounts')
    .description('service accounts: machine identities with API keys or CI trust');

  accounts
    .command('create <name>')
    .description('create a service account')
    .option('--group <group>', 'a group it belongs to (repeatable, or comma-separated)', collect)
    .option('--admin', 'make it an admin')
    .action(async (name: string, opts: { group?: string[]; admin?: boolean }) => {
      const c = ctx();
      const created = await (await c.api()).post<ServiceAccountView>('/api/v1/serviceaccounts', {
        name,
        role: opts.admin ? 'admin' : 'user',
        groups: opts.group ?? [],
      });
      c.out.data(created, () =>
        c.out.line(
          `Service account ${created.name} created. Give it a key: hoop admin apikeys create --serviceaccount ${created.name}`,
        ),
      );
    });

  accounts.command('list').action(async () => {
    const c = ctx();
    const list = await (await c.api()).get<ServiceAccountView[]>('/api/v1/serviceaccounts');
    c.out.data(list, () =>
      c.out.line(
        table(list.map((a) => ({ ...a, groups: a.groups.join(',') })) as never, [
          'name',
          'role',
          'groups',
          'disabled',
          'createdAt',
        ]),
      ),
    );
  });

  accounts
    .command('delete <name>')
    .description('delete a service account, its API keys and trust policies')
    .action(async (name: string) => {
      const c = ctx();
      const result = await (await c.api()).delete<{ deleted: string; sessionsEnded: number }>(
        `/api/v1/serviceaccounts/${encodeURIComponent(name)}`,
      );
      c.out.data(result, () =>
        c.out.line(
          `Service account ${name} deleted; ${result.sessionsEnded} live session(s) closed.`,
        ),
      );
    });
}
