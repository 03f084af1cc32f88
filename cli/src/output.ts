/**
 * Output for people and machines: `--json` prints exactly one JSON document on stdout; human
 * output goes to stdout as short lines and tables. Errors go to stderr as "error: … / hint: …"
 * (or a JSON error object with --json), and the process exits with the error's code.
 */
import { ExitCode, HoopError, toHoopError } from '@hoop/shared';

export interface Output {
  readonly json: boolean;
  /** Human line (suppressed with --json). */
  line(text: string): void;
  /** The command's data: JSON with --json, otherwise the human rendering. */
  data(value: unknown, human: () => void): void;
  /** Progress for people, on stderr (never in --json). */
  progress(text: string): void;
}

export function createOutput(
  json: boolean,
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Output {
  return {
    json,
    line: (text) => {
      if (!json) stdout.write(`${text}\n`);
    },
    data: (value, human) => {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else human();
    },
    progress: (text) => {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}

/** Rows as aligned columns under a header of the keys' words (`bytesUp` → `BYTES UP`). */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const headers = columns.map(header);
  const cells = rows.map((row) => columns.map((c) => formatCell(row[c])));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => (r[i] as string).length)),
  );
  const render = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [render(headers), ...cells.map(render)].join('\n');
}

function header(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
}

function formatCell(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

export function reportError(
  err: unknown,
  json: boolean,
  stderr: NodeJS.WritableStream = process.stderr,
): number {
  const error = toHoopError(err);
  if (json) stderr.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
  else stderr.write(`error: ${error.message}\nhint: ${error.hint}\n`);
  return error.exitCode;
}

export { ExitCode, HoopError };
