/**
 * A bare TCP relay, the floor under every relaying path: `node relay-process.js HOST:PORT`
 * listens on 127.0.0.1 (a free port), prints `{"port":N}` and, for each connection, opens one to
 * HOST:PORT and pipes bytes both ways — Node's own stream pipe, Nagle off, half-close passed on,
 * nothing else. The bench chains these to show what a path through as many Node.js processes as
 * hoop's costs before any tunnel, framing or policy (see relay.ts). A bad argument is a usage
 * error (exit code 2); SIGTERM, which the bench's Services send, ends it by default.
 */
import { createServer, connect as tcpConnect } from 'node:net';

const [target = ''] = process.argv.slice(2);
const match = /^(.+):(\d+)$/.exec(target);
if (match === null) {
  process.stderr.write('usage: relay-process.js HOST:PORT\n');
  process.exit(2);
}
const host = match[1] as string;
const port = Number(match[2]);

const server = createServer({ allowHalfOpen: true }, (client) => {
  client.setNoDelay(true);
  const upstream = tcpConnect({ port, host, allowHalfOpen: true });
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
