/** `hoop admin apikeys create|list|delete`: a service account's API keys (shown once). */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface ApiKeyView {
  id: string;
  serviceAccount: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  key?: string;
}

export function adminApiKeysCommand(admin: Command, ctx: () => CommandContext): void {
  const keys = admin.command('apikeys').description("service accounts' API keys");

  keys
    .command('create')
    .description('create an API key and print it once (use it as HOOP_TOKEN)')
    .requiredOption('--serviceaccount <name>', 'the service account the key acts as')
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h (default: no expiry)')
    .option('--name <label>', 'a label for the key')
    .action(async (opts: { serviceaccount: string; expires?: string; name?: string }) => {
      const c = ctx();
      const created = await (await c.api()).post<ApiKeyView>('/api/v1/apikeys', {
        serviceAccount: opts.serviceaccount,
        ...(opts.expires === undefined ? {} : { expires: opts.expires }),
        ...(opts.name === undefined ? {} : { name: opts.name }),
      });
      c.out.data({ id: created.id, key: created.key, expiresAt: created.expiresAt }, () => {
        c.out.line(
          `API key ${created.id} for ${created.serviceAccount} created${created.expiresAt ? ` (expires ${created.expiresAt})` : ''}. It is shown only this once:`,
        );
        c.out.line('');
        c.out.line(`  ${created.key}`);
        c.out.line('');
        c.out.line('Use it as HOOP_TOKEN.');
      });
    });

  keys
    .command('list')
    .option('--serviceaccount <name>', 'only this service account')
    .action(async (opts: { serviceaccount?: string }) => {
      const c = ctx();
      const query =
        opts.serviceaccount === undefined
          ? ''
          : `?serviceaccount=${encodeURIComponent(opts.serviceaccount)}`;
      const list = await (await c.api()).get<ApiKeyView[]>(`/api/v1/apikeys${query}`);
      c.out.data(list, () =>
        c.out.line(
          table(list as never, ['id', 'serviceAccount', 'name', 'lastUsedAt', 'expiresAt']),
        ),
      );
    });

  keys
    .command('delete <id>')
    .description('delete an API key; live sessions of its service account close')
    .action(async (id: string) => {
      const c = ctx();
      const result = await (await c.api()).delete<{ deleted: string; sessionsEnded: number }>(
        `/api/v1/apikeys/${encodeURIComponent(id)}`,
      );
      c.out.data(result, () =>
        c.out.line(`API key ${id} deleted; ${result.sessionsEnded} live session(s) closed.`),
      );
    });
}
