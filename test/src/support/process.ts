/**
 * A spawned child process the e2e suite owns: output collected (stdout whole up to a cap, stderr
 * as a tail for failure messages), bounded waits on its output, and a stop that always ends it
 * (SIGTERM, then SIGKILL). Every live child is SIGKILLed when the test process exits, so a failed
 * or timed-out test never leaves processes behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { Env } from './env.js';

const MAX_STDOUT_CHARS = 1024 * 1024;
const STDERR_TAIL_CHARS = 16 * 1024;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StopResult extends Exit {
  /** True when SIGTERM was not enough and the process had to be SIGKILLed. */
  readonly killed: boolean;
}

export interface SpawnOptions {
  /** Names the process in error messages, e.g. "broker". */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Env;
  readonly cwd?: string;
  /** Sees every raw stdout chunk (e.g. to count rows without keeping or decoding them). */
  readonly onStdout?: (chunk: Buffer) => void;
}

export class ChildHandle {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  private stdoutText = '';
  private stderrText = '';
  private exitValue: Exit | undefined;

  constructor(options: SpawnOptions) {
    this.name = options.name;
    this.child = spawn(options.command, [...options.args], {
      env: options.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    const decoder = new StringDecoder('utf8');
    this.child.stderr?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: Buffer) => {
      options.onStdout?.(chunk);
      if (this.stdoutText.length < MAX_STDOUT_CHARS) this.stdoutText += decoder.write(chunk);
    });
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderrText = (this.stderrText + chunk).slice(-STDERR_TAIL_CHARS);
    });
    this.exited = new Promise<Exit>((resolve) => {
      // 'close' (not 'exit') so every byte of output has been read when it resolves.
      this.child.once('close', (code, signal) => {
        live.delete(this.child);
        this.exitValue = { code, signal };
        resolve(this.exitValue);
      });
      this.child.once('error', (err) => {
        live.delete(this.child);
        this.stderrText += `\nspawn error: ${err.message}`;
        this.exitValue = { code: null, signal: null };
        resolve(this.exitValue);
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid (spawn failed)`);
    return this.child.pid;
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The exit status, once the process has exited. */
  get exit(): Exit | undefined {
    return this.exitValue;
  }

  get running(): boolean {
    return this.exitValue === undefined;
  }

  /** One paragraph for assertion messages: who, whether it exited, and its stderr tail. */
  describe(): string {
    const status =
      this.exitValue === undefined
        ? `running (pid ${this.child.pid})`
        : `exited (code ${this.exitValue.code}, signal ${this.exitValue.signal})`;
    const tail = this.stderrText.split('\n').slice(-30).join('\n');
    return `${this.name} ${status}\n--- ${this.name} stdout ---\n${this.stdoutText.slice(-4000)}\n--- ${this.name} stderr tail ---\n${tail}`;
  }

  /**
   * Waits until `match` finds something in stdout (it is called again on every new chunk), and
   * returns it. Fails early if the process exits first, and after `timeoutMs` in any case.
   */
  waitForStdout<T>(
    match: (stdout: string) => T | undefined,
    options: { timeoutMs: number; what: string },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout?.off('data', onData);
        this.child.off('close', onClose);
      };
      const check = (): boolean => {
        let value: T | undefined;
        try {
          value = match(this.stdoutText);
        } catch {
          value = undefined;
        }
        if (value === undefined) return false;
        cleanup();
        resolve(value);
        return true;
      };
      const onData = () => {
        check();
      };
      const onClose = () => {
        // Output that arrived with the exit still counts.
        if (check()) return;
        cleanup();
        reject(new Error(`${this.name} exited before ${options.what}\n${this.describe()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${options.timeoutMs} ms waiting for ${options.what}\n${this.describe()}`,
          ),
        );
      }, options.timeoutMs);
      this.child.stdout?.on('data', onData);
      this.child.once('close', onClose);
      if (!check() && this.exitValue !== undefined) onClose();
    });
  }

  /** Waits for stdout to hold exactly one complete JSON document and returns it. */
  waitForJson<T>(timeoutMs: number, what = 'its JSON ready document'): Promise<T> {
    return this.waitForStdout<T>(
      (text) => (text.trim() === '' ? undefined : (JSON.parse(text) as T)),
      { timeoutMs, what },
    );
  }

  /** Every stdout line that parses as JSON (for JSON-lines output like the agent's events). */
  jsonLines<T>(): T[] {
    const out: T[] = [];
    for (const line of this.stdoutText.split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        // a partial last line, or human output
      }
    }
    return out;
  }

  /** Sends `signal` (if still running) and waits, bounded, for the exit. */
  async signal(signal: NodeJS.Signals, timeoutMs = 10_000): Promise<Exit> {
    if (this.exitValue !== undefined) return this.exitValue;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const exit = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (exit !== undefined) return exit;
    throw new Error(`${this.name} did not exit within ${timeoutMs} ms of ${signal}`);
  }

  /** SIGKILL and wait for the exit. */
  kill(): Promise<Exit> {
    return this.signal('SIGKILL', 10_000);
  }

  /**
   * Graceful stop: SIGTERM, then SIGKILL if it has not exited within `graceMs`. Never throws;
   * returns the exit and whether it had to be killed.
   */
  async stop(graceMs = 10_000): Promise<StopResult> {
    try {
      return { ...(await this.signal('SIGTERM', graceMs)), killed: false };
    } catch {
      return { ...(await this.kill()), killed: true };
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Runs a process to completion (bounded) and returns its status and whole output. */
export async function runToExit(
  options: SpawnOptions & { timeoutMs: number },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const handle = new ChildHandle(options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), options.timeoutMs);
  });
  const exit = await Promise.race([handle.exited, timedOut]);
  clearTimeout(timer);
  if (exit === undefined) {
    await handle.kill();
    throw new Error(
      `${options.name} did not finish within ${options.timeoutMs} ms\n${handle.describe()}`,
    );
  }
  return { code: exit.code, signal: exit.signal, stdout: handle.stdout, stderr: handle.stderr };
}
