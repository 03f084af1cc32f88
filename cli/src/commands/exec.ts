/**
 * `hoop exec CONN [-c SQL | --file F]` (SQL from stdin when neither): runs SQL through hoop with
 * the same access as `hoop connect` (your login, or a grant with --grant / HOOP_GRANT) and prints
 * the result sets, or with --json an array of {tag, command, rowCount, columns, rows}. The SQL is
 * sent as one simple query, so a script runs as one statement review.
 *
 * Statement reviews: by default exec does not wait. When the SQL needs approval the review is
 * created and exec exits 7 (PENDING_APPROVAL) with its id; once approved, `--review ID` with the
 * same SQL runs it, exactly once. `--wait` instead holds (spinner on stderr) until decided.
 */
import { readFile } from 'node:fs/promises';
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import { loadConfig, requireBroker } from '../config.js';
import type { CommandContext } from '../context.js';

interface ExecOptions {
  command?: string;
  file?: string;
  grant?: string;
  review?: string;
  wait?: boolean;
}

export function execCommand(program: Command, ctx: () => CommandContext): void {
  program
    .command('exec <connection>')
    .description('run SQL through hoop and print the results (SQL from -c, --file or stdin)')
    .option('-c, --command <sql>', 'the SQL to run')
    .option('--file <path>', 'read the SQL from a file (- for stdin)')
    .option('--grant <grant>', 'use this grant instead of your login (or set HOOP_GRANT)')
    .option('--review <id>', 'run SQL that review <id> approved (once; the same SQL)')
    .option('--wait', 'when the SQL needs approval, wait for the decision instead of exiting 7')
    .action(async (connection: string, opts: ExecOptions, command: Command) => {
      const c = ctx();
      const sql = await readSql(opts);
      const grant = opts.grant || c.env['HOOP_GRANT'] || undefined;
      const flag = command.optsWithGlobals<{ broker?: string }>().broker;
      const config = await loadConfig(c.env, { brokerUrl: flag });
      const { brokerUrl, token } = requireBroker(
        grant === undefined ? config : { ...config, token: grant },
      );
      // pg and the engine's helpers load only for this command.
      const [{ execSql, ReviewRefusedError }, { renderResults }, { Spinner }] = await Promise.all([
        import('../exec/pg-session.js'),
        import('../exec/render.js'),
        import('../exec/spinner.js'),
      ]);
      const spinner = new Spinner();
      let results: Awaited<ReturnType<typeof execSql>>;
      try {
        results = await execSql({
          brokerUrl,
          token,
          connection,
          sql,
          reviews: opts.wait === true ? 'hold' : 'return',
          review: opts.review,
          logger: c.logger,
          onNotice: (text) => process.stderr.write(`${text}\n`),
          onWaiting: (review) => {
            if (c.out.json) return;
            spinner.start(
              `waiting for approval: review ${review} (an approver runs: hoop reviews approve ${review})`,
            );
          },
        });
      } catch (err) {
        if (err instanceof ReviewRefusedError && err.code === 'PENDING_APPROVAL' && err.review) {
          const id = err.review;
          c.out.data({ review: id, status: 'pending' }, () => c.out.line(id));
          throw new HoopError('PENDING_APPROVAL', `the SQL waits for statement review ${id}`, {
            hint: `An approver runs \`hoop reviews approve ${id}\`; then run the same SQL with \`hoop exec ${connection} --review ${id}\` (or use --wait).`,
          });
        }
        throw err;
      } finally {
        spinner.stop();
      }
      c.out.data(results, () => c.out.line(renderResults(results)));
    });
}

async function readSql(opts: ExecOptions): Promise<string> {
  if (opts.command !== undefined && opts.file !== undefined) {
    throw new HoopError('USAGE', 'give the SQL with -c or --file, not both');
  }
  let sql: string;
  if (opts.command !== undefined) sql = opts.command;
  else if (opts.file !== undefined && opts.file !== '-') sql = await readFileSql(opts.file);
  else if (opts.file === undefined && process.stdin.isTTY === true) {
    throw new HoopError('USAGE', 'no SQL to run', {
      hint: "Give it with -c 'SQL', --file F, or on stdin.",
    });
  } else sql = await readStdin();
  if (sql.trim() === '') throw new HoopError('USAGE', 'the SQL to run is empty');
  return sql;
}

async function readFileSql(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new HoopError('USAGE', `cannot read ${path}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
