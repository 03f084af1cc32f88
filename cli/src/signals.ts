import { type Logger, startIdleCollector } from '@hoop/shared';

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals) => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/**
 * Where a long-running command (broker, agent, connect, up) waits until it is asked to stop.
 * Meanwhile its main thread gives back the memory of a burst once it is idle again
 * (@hoop/shared IdleCollector).
 */
export async function serveUntilSignal(logger: Logger): Promise<NodeJS.Signals> {
  const collector = startIdleCollector({ logger });
  try {
    return await untilSignal();
  } finally {
    collector.stop();
  }
}
