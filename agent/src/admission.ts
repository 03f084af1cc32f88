/**
 * Sessions waiting for the broker's `admit` (OpenSessionMessage.admit). The broker stores a
 * session's row while the agent already logs in to the target with the client's startup; once
 * the row is stored it admits the session, and only then does the engine pass anything else
 * between client and target. Nothing a client asks for runs before its session is on record,
 * and the target's own connection start (PostgreSQL forks a backend for it) overlaps the store's
 * write instead of following it.
 */
import { HoopError, type TunnelStream } from '@hoop/shared';

export class Admissions {
  private readonly waiting = new Map<TunnelStream, () => void>();

  /**
   * Resolves once the broker admits `stream`'s session. Rejects when the stream ends first, with
   * the broker's reason when it gave one (say, the session row could not be stored).
   */
  expect(stream: TunnelStream): Promise<void> {
    const admitted = new Promise<void>((resolve, reject) => {
      const ended = (): void => {
        this.waiting.delete(stream);
        const reason = stream.errored;
        reject(
          reason instanceof HoopError
            ? reason
            : new HoopError('TUNNEL_CLOSED', 'the session ended before the broker recorded it'),
        );
      };
      stream.once('close', ended);
      this.waiting.set(stream, () => {
        this.waiting.delete(stream);
        stream.off('close', ended);
        resolve();
      });
    });
    // Awaited by the engine once it has logged in; a session refused before then never does.
    admitted.catch(() => {});
    return admitted;
  }

  /** The broker admitted the session on `stream` (an admit for no waiting session is ignored). */
  admit(stream: TunnelStream): void {
    this.waiting.get(stream)?.();
  }
}

/**
 * Waits for `admitted` unless `signal` aborts first (a handshake timeout, a session ended by the
 * broker): rejects with the signal's reason then.
 */
export function whenAdmitted(admitted: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    admitted.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
