/**
 * A full garbage collection in another Node.js process, through its inspector (started with
 * `--inspect=127.0.0.1:0`; the bench reads the address from its stderr). The soak compares memory
 * after a collection at its start and at its end: RSS sampled under load rises and falls with
 * when V8 happens to collect, and a 60-second window can end on a peak of garbage that the next
 * collection would return. What a collection cannot return is what a leak keeps.
 *
 * Chrome DevTools Protocol over a WebSocket: HeapProfiler.collectGarbage, Runtime.getHeapUsage,
 * in the main thread and, through the NodeWorker domain, in every worker thread (the broker's
 * embedded store runs in one).
 */
import WebSocket from 'ws';

/** The inspector address in a process's stderr ("Debugger listening on ws://…"). */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr)?.[1];
}

export interface HeapAfterGc {
  /** Bytes of JavaScript heap in use after the collection: the main thread and its workers. */
  readonly usedBytes: number;
  /** How many worker threads were collected with it. */
  readonly workers: number;
}

interface WorkerAttached {
  readonly sessionId: string;
}

/** How long attaching to the workers may take before the main thread's numbers are used alone. */
const WORKER_ATTACH_MS = 500;

/** Runs a full collection in the process behind `url` and reads its heap in use. */
export async function collectGarbage(url: string, timeoutMs = 30_000): Promise<HeapAfterGc> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  const workers: WorkerAttached[] = [];
  let nextId = 1;
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`inspector ${url}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    ws.once('error', reject);
    ws.once('close', () => reject(new Error(`inspector ${url} closed`)));
  });
  failed.catch(() => {});
  const inWorker = new Map<string, (result: Record<string, unknown>) => void>();
  ws.on('message', (data) => {
    const message = JSON.parse(String(data)) as {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: Record<string, unknown>;
    };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
    else if (message.method === 'NodeWorker.attachedToWorker') {
      workers.push({ sessionId: String(message.params?.['sessionId']) });
    } else if (message.method === 'NodeWorker.receivedMessageFromWorker') {
      const inner = JSON.parse(String(message.params?.['message'])) as {
        id?: number;
        result?: Record<string, unknown>;
      };
      const key = `${String(message.params?.['sessionId'])}:${inner.id}`;
      if (inner.id !== undefined) inWorker.get(key)?.(inner.result ?? {});
    }
  });
  const call = (method: string, params?: object): Promise<Record<string, unknown>> => {
    const id = nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve) => pending.set(id, resolve));
    ws.send(JSON.stringify({ id, method, params }));
    return Promise.race([answered, failed]);
  };
  const callWorker = (worker: WorkerAttached, method: string): Promise<Record<string, unknown>> => {
    const id = nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve) =>
      inWorker.set(`${worker.sessionId}:${id}`, resolve),
    );
    const message = JSON.stringify({ id, method });
    void call('NodeWorker.sendMessageToWorker', { sessionId: worker.sessionId, message });
    return Promise.race([answered, failed]);
  };
  const used = (usage: Record<string, unknown>): number => {
    const bytes = usage['usedSize'];
    if (typeof bytes !== 'number') throw new Error(`inspector ${url}: no heap usage`);
    return bytes;
  };
  try {
    await Promise.race([new Promise((resolve) => ws.once('open', resolve)), failed]);
    // Twice: objects with finalizers or weak callbacks are freed by the second one.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    let usedBytes = used(await call('Runtime.getHeapUsage'));
    // Existing workers are announced right after enabling, without pausing them.
    await call('NodeWorker.enable', { waitForDebuggerOnStart: false });
    await new Promise((resolve) => setTimeout(resolve, WORKER_ATTACH_MS));
    for (const worker of workers) {
      await callWorker(worker, 'HeapProfiler.collectGarbage');
      await callWorker(worker, 'HeapProfiler.collectGarbage');
      usedBytes += used(await callWorker(worker, 'Runtime.getHeapUsage'));
    }
    await call('NodeWorker.disable');
    return { usedBytes, workers: workers.length };
  } finally {
    clearTimeout(timer);
    ws.removeAllListeners('close');
    ws.terminate();
  }
}
