/**
 * `hoop audit list|verify|export`: the broker's hash-chained audit log.
 *   list [--since T] [--connection C] [--user U] [--limit N]   rows, oldest first
 *   verify                                                     exit 1 (AUDIT_CHAIN_BROKEN) naming bad rows
 *   export                                                     every row as JSON lines on stdout
 */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface VerifyResult {
  ok: boolean;
  rows: number;
  head: { id: number; hash: string | null } | null;
  anchoredFrom: string | null;
  problems: { id: number; kind: string; message: string }[];
}

export function auditCommand(program: Command, ctx: () => CommandContext): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('list')
    .description('audit events, oldest first')
    .option('--since <time>', 'ISO time or a duration back from now (e.g. 24h, 7d)')
    .option('--connection <name>', 'only events about this connection')
    .option('--user <name>', 'only events by or for this user')
    .option('--limit <n>', 'at most this many', '1000')
    .action(async (opts: { since?: string; connection?: string; user?: string; limit: string }) => {
      const c = ctx();
      const q = new URLSearchParams();
      if (opts.since !== undefined) q.set('since', opts.since);
      if (opts.connection !== undefined) q.set('connection', opts.connection);
      if (opts.user !== undefined) q.set('user', opts.user);
      q.set('limit', opts.limit);
      const rows = await (await c.api()).get<Record<string, unknown>[]>(`/api/v1/audit?${q}`);
      c.out.data(rows, () => {
        if (rows.length === 0) {
          c.out.line('No audit events.');
          return;
        }
        c.out.line(
          table(
            rows.map((r) => ({ ...r, what: summary(r['data']) })),
            ['id', 'at', 'type', 'connection', 'user', 'sessionId', 'what'],
          ),
        );
      });
    });

  audit
    .command('verify')
    .description('check the hash chain; exits non-zero naming any edited, deleted or reordered row')
    .action(async () => {
      const c = ctx();
      const result = await (await c.api()).get<VerifyResult>('/api/v1/audit/verify');
      c.out.data(result, () => {
        if (result.ok) {
          c.out.line(
            `audit chain intact: ${result.rows} rows${result.head === null ? '' : `, head row ${result.head.id} ${result.head.hash}`}${result.anchoredFrom === null ? '' : ` (continues from retention anchor ${result.anchoredFrom.slice(0, 16)}…)`}`,
          );
        } else {
          for (const p of result.problems) c.out.line(`row ${p.id}: ${p.kind}: ${p.message}`);
        }
      });
      if (!result.ok) {
        const first = result.problems[0];
        throw new HoopError(
          'AUDIT_CHAIN_BROKEN',
          `the audit chain is broken at row ${first?.id}: ${first?.message} (${result.problems.length} problem(s))`,
        );
      }
    });

  audit
    .command('export')
    .description('every audit row as JSON lines on stdout (with prev_hash and hash)')
    .action(async () => {
      const c = ctx();
      const { brokerUrl, token } = await c.broker();
      const url = new URL('/api/v1/audit/export', brokerUrl);
      let response: Response;
      try {
        response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      } catch (err) {
        throw new HoopError(
          'BROKER_UNREACHABLE',
          `cannot reach the broker at ${brokerUrl} (${(err as Error).message})`,
        );
      }
      if (!response.ok || response.body === null) {
        // Errors come back as the usual JSON; let the API client turn them into a HoopError.
        await (await c.api()).get('/api/v1/audit/export');
        throw new HoopError('INTERNAL', `the broker answered HTTP ${response.status}`);
      }
      for await (const chunk of response.body) {
        if (!process.stdout.write(chunk as Uint8Array)) {
          await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
        }
      }
    });
}

function summary(data: unknown): string {
  if (data === null || typeof data !== 'object') return '';
  const d = data as Record<string, unknown>;
  if (typeof d['text'] === 'string') {
    const text = d['text'].replace(/\s+/g, ' ');
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  }
  if (typeof d['subject'] === 'string') return d['subject'];
  if (typeof d['continuesFrom'] === 'string')
    return `continues from ${d['continuesFrom'].slice(0, 16)}`;
  return '';
}
