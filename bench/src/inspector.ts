/**
 * A full garbage collection in another Node.js process, through its inspector (started with
 * `--inspect=127.0.0.1:0`; the bench reads the address from its stderr). The soak compares memory
 * after a collection at its start and at its end: RSS sampled under load rises and falls with
 * when V8 happens to collect, and a 60-second window can end on a peak of garbage that the next
 * collection would return. What a collection cannot return is what a leak keeps.
 *
 * Chrome DevTools Protocol over a WebSocket: HeapProfiler.collectGarbage, Runtime.getHeapUsage.
 */
import WebSocket from 'ws';

/** The inspector address in a process's stderr ("Debugger listening on ws://…"). */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr)?.[1];
}

export interface HeapAfterGc {
  /** Bytes of the main thread's JavaScript heap in use after the collection. */
  readonly usedBytes: number;
}

/** Runs a full collection in the process behind `url` and reads its heap in use. */
export async function collectGarbage(url: string, timeoutMs = 30_000): Promise<HeapAfterGc> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  let nextId = 1;
  const failed = new Promise<never>((_, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`inspector ${url}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    ws.once('error', reject);
    ws.once('close', () => reject(new Error(`inspector ${url} closed`)));
  });
  failed.catch(() => {});
  ws.on('message', (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown> };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  });
  const call = (method: string): Promise<Record<string, unknown>> => {
    const id = nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve) => pending.set(id, resolve));
    ws.send(JSON.stringify({ id, method }));
    return Promise.race([answered, failed]);
  };
  try {
    await Promise.race([new Promise((resolve) => ws.once('open', resolve)), failed]);
    // Twice: objects with finalizers or weak callbacks are freed by the second one.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const usage = await call('Runtime.getHeapUsage');
    const usedBytes = usage['usedSize'];
    if (typeof usedBytes !== 'number') throw new Error(`inspector ${url}: no heap usage`);
    return { usedBytes };
  } finally {
    ws.removeAllListeners('close');
    ws.terminate();
  }
}
