/** A TCP echo server on 127.0.0.1 for the bench's own tests (link, relay). */
import { createServer } from 'node:net';

export async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
