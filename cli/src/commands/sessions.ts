/**
 * `hoop sessions list|show|replay`. `show` prints the session and its timeline; `replay` prints
 * the timeline only, in order, with the time between events (SQL: statement, duration, rows,
 * denied or masked). `--json` prints the API's documents (`replay`: the events array).
 */
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
    const session = await (await c.api()).get<
      Record<string, unknown> & { events?: Record<string, unknown>[] }
    >(`/api/v1/sessions/${encodeURIComponent(id)}`);
    c.out.data(session, () => {
      const { events, ...fields } = session;
      for (const [k, v] of Object.entries(fields)) c.out.line(`${k.padEnd(15)} ${v ?? '-'}`);
      if (events === undefined || events.length === 0) return;
      c.out.line('');
      c.out.line('timeline:');
      for (const e of events) c.out.line(`  ${describeEvent(e)}`);
    });
  });

  sessions
    .command('replay <id>')
    .description("the session's recorded timeline, in order")
    .action(async (id: string) => {
      const c = ctx();
      const session = await (await c.api()).get<
        Record<string, unknown> & { events?: Record<string, unknown>[] }
      >(`/api/v1/sessions/${encodeURIComponent(id)}`);
      const events = session.events ?? [];
      c.out.data(events, () => {
        c.out.line(
          `session ${String(session['id'])} on ${String(session['connectionName'])}: ${String(session['status'])}${session['errorCode'] ? ` (${String(session['errorCode'])})` : ''}, ${events.length} events`,
        );
        let previous: number | undefined;
        for (const e of events) {
          const at = Number(e['at']);
          const gap = previous === undefined ? '' : `+${((at - previous) / 1000).toFixed(3)}s `;
          previous = at;
          c.out.line(`  ${gap.padStart(10)}${describeEvent(e)}`);
        }
      });
    });
}

function describeEvent(e: Record<string, unknown>): string {
  const at = new Date(Number(e['at'])).toISOString().slice(11, 23);
  if (e['type'] !== 'statement')
    return `${at}  ${String(e['type'])}${e['detail'] ? ` ${String(e['detail'])}` : ''}`;
  const parts = [`${at}  ${String(e['text'])}`];
  if (e['durationMs'] !== undefined) parts.push(`${e['durationMs']} ms`);
  if (e['rows'] !== undefined) parts.push(`${e['rows']} rows`);
  const denied = e['denied'] as { rule?: string } | undefined;
  if (denied?.rule) parts.push(`DENIED (${denied.rule})`);
  const error = e['error'] as { code?: string } | undefined;
  if (error?.code) parts.push(`error ${error.code}`);
  const masked = e['masked'] as
    | { columns?: Record<string, number>; detectors?: Record<string, number> }
    | undefined;
  const maskedNames = [
    ...Object.keys(masked?.columns ?? {}),
    ...Object.keys(masked?.detectors ?? {}),
  ];
  if (maskedNames.length > 0) parts.push(`masked: ${maskedNames.join(', ')}`);
  return parts.join(' · ');
}
