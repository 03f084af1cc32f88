/**
 * Child processes of the bench: one-shot commands (psql, pgbench, `hoop admin …`) and
 * long-running services (broker, agent, connect) that are always stopped, on success, failure
 * or Ctrl-C.
 *
 * Services run in their own process group, so a terminal Ctrl-C reaches only the bench, which
 * then stops each service exactly once: SIGTERM, and SIGKILL after a grace period. If the bench
 * itself dies, `Services.killAllSync` (hooked on process exit) takes the services with it.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { BenchError, BenchErrorCode } from './errors.js';

/** Bytes of a service's stdout kept for readiness matching (it prints one document, then logs). */
const MAX_STDOUT_CAPTURE = 1 << 20;
/** Characters of stderr kept to explain a failure. */
const STDERR_TAIL_CHARS = 4000;
const DEFAULT_STOP_GRACE_MS = 5000;

export type Env = Readonly<Record<string, string | undefined>>;

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Env;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Runs a command to completion and returns its output; never leaves it running. */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError(command));
      return;
    }
    const child = spawn(command, args, {
      env: options.env as NodeJS.ProcessEnv | undefined,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let failure: BenchError | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = tail(stderr + chunk, STDERR_TAIL_CHARS * 4);
    });
    const kill = (error: BenchError) => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        kill(
          new BenchError(
            BenchErrorCode.timeout,
            `${command} did not finish within ${seconds(options.timeoutMs)}`,
          ),
        ),
      options.timeoutMs,
    );
    const onAbort = () => kill(abortError(command));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      settle();
      reject(
        err.code === 'ENOENT'
          ? new BenchError(BenchErrorCode.notFound, `${command} is not on PATH`, { cause: err })
          : err,
      );
    });
    child.on('close', (code, signal) => {
      settle();
      if (failure !== undefined) reject(failure);
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

type ServiceState = 'running' | 'stopping' | 'exited';

/** A long-running child whose stdout announces readiness. */
export class Service {
  readonly name: string;
  readonly pid: number;
  #child: ChildProcess;
  #state: ServiceState = 'running';
  #stdout = '';
  #stderrTail = '';
  #stderrHead = '';
  #exitDescription = '';
  readonly #exited: Promise<void>;
  readonly #watchers = new Set<() => void>();

  constructor(name: string, child: ChildProcess, forwardStderr: boolean) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.name = name;
    this.pid = child.pid;
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.#stdout.length < MAX_STDOUT_CAPTURE) this.#stdout += chunk;
      this.#notify();
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderrTail = tail(this.#stderrTail + chunk, STDERR_TAIL_CHARS);
      if (this.#stderrHead.length < STDERR_TAIL_CHARS) {
        this.#stderrHead = (this.#stderrHead + chunk).slice(0, STDERR_TAIL_CHARS);
      }
      if (forwardStderr) process.stderr.write(prefixLines(`[${name}] `, chunk));
    });
    this.#exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.#exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        this.#state = 'exited';
        this.#notify();
        resolve();
      });
    });
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** The first STDERR_TAIL_CHARS characters the service wrote to stderr (e.g. its inspector). */
  get stderrHead(): string {
    return this.#stderrHead;
  }

  /**
   * Resolves with the first value `match` finds in the stdout seen so far; rejects when the
   * service exits first, when `timeoutMs` passes, or on abort.
   */
  waitFor<T>(
    what: string,
    match: (stdout: string) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        this.#watchers.delete(check);
        signal?.removeEventListener('abort', onAbort);
        outcome();
      };
      const check = () => {
        const value = match(this.#stdout);
        if (value !== undefined) finish(() => resolve(value));
        else if (this.#state === 'exited')
          finish(() =>
            reject(
              new BenchError(
                BenchErrorCode.serviceExited,
                `${this.name} exited (${this.#exitDescription}) before ${what}${this.#diagnostics()}`,
              ),
            ),
          );
      };
      const onAbort = () => finish(() => reject(abortError(this.name)));
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new BenchError(
                BenchErrorCode.timeout,
                `${this.name}: no ${what} within ${seconds(timeoutMs)}${this.#diagnostics()}`,
              ),
            ),
          ),
        timeoutMs,
      );
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#watchers.add(check);
      check();
    });
  }

  /** The error to throw when this service exited while something waited on it. */
  exitedError(what: string): BenchError {
    return new BenchError(
      BenchErrorCode.serviceExited,
      `${this.name} exited (${this.#exitDescription}) before ${what}${this.#diagnostics()}`,
    );
  }

  /** Resident set size from /proc (Linux), in KiB; undefined once exited or elsewhere. */
  async rssKiB(): Promise<number | undefined> {
    if (this.#state === 'exited') return undefined;
    try {
      const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    if (this.#state === 'exited') return;
    if (this.#state === 'running') {
      this.#state = 'stopping';
      this.#signalGroup('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#signalGroup('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.#exited, killed]);
    clearTimeout(timer);
    await this.#exited;
  }

  /** Last resort from a synchronous exit handler. */
  killNow(): void {
    if (this.#state !== 'exited') this.#signalGroup('SIGKILL');
  }

  #signalGroup(signal: NodeJS.Signals): void {
    try {
      // Negative pid: the whole process group the detached child leads.
      process.kill(-this.pid, signal);
    } catch {
      this.#child.kill(signal);
    }
  }

  #notify(): void {
    for (const watcher of [...this.#watchers]) watcher();
  }

  #diagnostics(): string {
    const out = tail(this.#stdout.trim(), 1000);
    const err = this.#stderrTail.trim();
    return (out ? `\n  stdout: ${out}` : '') + (err ? `\n  stderr: ${err}` : '');
  }
}

/** Every service the bench started, stopped newest first. */
export class Services {
  readonly #all: Service[] = [];
  readonly #forwardStderr: boolean;

  constructor(options: { forwardStderr: boolean }) {
    this.#forwardStderr = options.forwardStderr;
  }

  start(name: string, command: string, args: readonly string[], env: Env): Service {
    const child = spawn(command, args, {
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const service = new Service(name, child, this.#forwardStderr);
    this.#all.push(service);
    return service;
  }

  async stopAll(): Promise<void> {
    for (const service of [...this.#all].reverse()) await service.stop();
  }

  killAllSync(): void {
    for (const service of this.#all) service.killNow();
  }
}

/** Matches a service that prints exactly one JSON document (`--json`) when it is ready. */
export function jsonDocument<T>(stdout: string): T | undefined {
  const text = stdout.trim();
  if (!text.endsWith('}')) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Matches the first JSON line (`{…}\n`) that satisfies `accept`. */
export function jsonLine<T>(accept: (value: T) => boolean): (stdout: string) => T | undefined {
  return (stdout) => {
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const value = JSON.parse(line) as T;
        if (accept(value)) return value;
      } catch {
        // a line still being written
      }
    }
    return undefined;
  };
}

export function abortError(what: string): BenchError {
  return new BenchError(BenchErrorCode.aborted, `${what}: interrupted`);
}

function tail(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

function prefixLines(prefix: string, chunk: string): string {
  return chunk.replace(/^(?=.)/gm, prefix);
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

/**
 * Polls `ready` (every 200 ms) until it returns true; fails early when one of `services` exits,
 * on timeout, or on abort. For programs that announce nothing on stdout (sshd, ssh -L, pgbouncer).
 */
export async function pollUntil(
  what: string,
  ready: () => Promise<boolean>,
  services: readonly Service[],
  timeoutMs: number,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) throw abortError(what);
    const gone = services.find((s) => s.state === 'exited');
    if (gone !== undefined) throw gone.exitedError(what);
    if (await ready()) return;
    if (Date.now() > deadline) {
      throw new BenchError(BenchErrorCode.timeout, `no ${what} within ${seconds(timeoutMs)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
