/**
 * Session recording chunks (asciicast lines, HTTP heads, …): in the store's `recording_chunks`
 * table by default, or as one append-only file per session under HOOP_RECORDINGS_DIR. Both are
 * idempotent on (session, seq), so redelivered chunks are ignored.
 *
 * File layout: `<dir>/<session>.jsonl`, one `{"seq","at","kind","data"}` line per chunk.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HoopError } from '@hoop/shared';
import { asc, eq } from 'drizzle-orm';
import { guard, type StoreContext } from '../store/context.js';
import { recordingChunks } from '../store/schema.js';

export interface RecordingChunk {
  readonly seq: number;
  readonly at: number;
  readonly kind: string;
  readonly data: string;
}

export interface RecordingStore {
  append(session: string, chunks: readonly RecordingChunk[]): Promise<number>;
  read(session: string): Promise<RecordingChunk[]>;
}

export function databaseRecordings(ctx: StoreContext): RecordingStore {
  return {
    append: (session, chunks) =>
      guard('append recording', async () => {
        if (chunks.length === 0) return 0;
        const rows = await ctx.db
          .insert(recordingChunks)
          .values(
            chunks.map((c) => ({
              sessionId: session,
              seq: c.seq,
              at: new Date(c.at),
              kind: c.kind,
              data: c.data,
            })),
          )
          .onConflictDoNothing()
          .returning({ seq: recordingChunks.seq });
        return rows.length;
      }),
    read: (session) =>
      guard('read recording', async () => {
        const rows = await ctx.db
          .select()
          .from(recordingChunks)
          .where(eq(recordingChunks.sessionId, session))
          .orderBy(asc(recordingChunks.seq));
        return rows.map((r) => ({ seq: r.seq, at: r.at.getTime(), kind: r.kind, data: r.data }));
      }),
  };
}

const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function directoryRecordings(dir: string): RecordingStore {
  const file = (session: string) => {
    if (!SAFE_ID.test(session)) throw new HoopError('INVALID_REQUEST', 'bad session id');
    return join(dir, `${session}.jsonl`);
  };
  const queues = new Map<string, Promise<unknown>>();
  const read = async (session: string): Promise<RecordingChunk[]> => {
    let text: string;
    try {
      text = await readFile(file(session), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: RecordingChunk[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as RecordingChunk);
      } catch {
        // a torn last line after a crash: the agent resends it
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  };
  return {
    append: (session, chunks) => {
      const previous = queues.get(session) ?? Promise.resolve();
      const run = previous.then(async () => {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const have = new Set((await read(session)).map((c) => c.seq));
        const fresh = chunks.filter((c) => !have.has(c.seq) && have.add(c.seq));
        if (fresh.length === 0) return 0;
        await appendFile(file(session), fresh.map((c) => `${JSON.stringify(c)}\n`).join(''), {
          mode: 0o600,
        });
        return fresh.length;
      });
      queues.set(
        session,
        run.catch(() => {}),
      );
      return run;
    },
    read,
  };
}
