/** Listen addresses as operators write them: `host:port`, `[v6]:port`; port 0 is any free one. */
import { HoopError } from './errors.js';

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HoopError(
      'USAGE',
      `listen address "${value}" is not host:port (e.g. 127.0.0.1:8009)`,
    );
  }
  return { host: (match[1] ?? match[2]) as string, port };
}
