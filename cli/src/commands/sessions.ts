/** `hoop sessions list|show`. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

export function sessionsCommand(program: Command, ctx: () => CommandContext): void {
  const sessions = program.command('sessions').description('sessions through the broker');

  sessions
    .command('list')
    .option('--limit <n>', 'how many, newest first', '50')
    .action(async (opts: { limit: string }) => {
      const c = ctx();
      const list = await (await c.api()).get<Record<string, unknown>[]>(
        `/api/v1/sessions?limit=${encodeURIComponent(opts.limit)}`,
      );
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No sessions yet.'
            : table(list, [
                'id',
                'connectionName',
                'status',
                'errorCode',
                'startedAt',
                'endedAt',
                'bytesUp',
                'bytesDown',
              ]),
        ),
      );
    });

  sessions.command('show <id>').action(async (id: string) => {
    const c = ctx();
    const session = await (await c.api()).get<Record<string, unknown>>(
      `/api/v1/sessions/${encodeURIComponent(id)}`,
    );
    c.out.data(session, () => {
      for (const [k, v] of Object.entries(session)) c.out.line(`${k.padEnd(15)} ${v ?? '-'}`);
    });
  });
}
