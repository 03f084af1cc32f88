/** Tells a client, in its own protocol, that its session could not be opened. */
import type { Duplex } from 'node:stream';
import type { ConnectionType, HoopError } from '@hoop/shared';
import { refusePostgresClient } from './postgres/refusal.js';

export async function refuseClient(
  type: ConnectionType,
  client: Duplex,
  error: HoopError,
): Promise<void> {
  switch (type) {
    case 'postgres':
      await refusePostgresClient(client, error);
      return;
  }
}
