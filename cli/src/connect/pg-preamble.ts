/**
 * The Postgres client's encryption negotiation, answered by `hoop connect` itself. A client
 * (libpq with sslmode=prefer, pgbench, most drivers) opens with SSLRequest and/or GSSENCRequest
 * — 8-byte packets: Int32 length 8, Int32 code 80877103 / 80877104 — and waits for one byte.
 * The local leg is loopback and hoop offers no TLS on it, so the answer is always 'N' (what the
 * agent would say too), and giving it here saves a round trip through broker and agent on every
 * new connection. The agent still negotiates TLS with the target on its own leg.
 *
 * Everything after the negotiation (the StartupMessage, or a CancelRequest) is not interpreted:
 * it is handed back untouched, to be sent through the tunnel (or to a refusal) as it came.
 * Each request is answered at most once; a repeated one ends the preamble and goes through as
 * data, so the agent sees exactly what a server would and fails it the same way.
 *
 * See https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import type { Socket } from 'node:net';

const ENCRYPTION_REQUEST_BYTES = 8;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const NO = Buffer.from('N');

/**
 * Reads the client's encryption requests from a paused socket, answers each with 'N', and
 * resolves with the first bytes after them (at least one byte, or empty when the client closed
 * first). The socket is paused again when it resolves, with no listener of its own left on it.
 */
export function answerPostgresEncryption(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    let held: Buffer = Buffer.alloc(0);
    let sslDone = false;
    let gssDone = false;
    const finish = (): void => {
      socket.off('data', onData);
      socket.off('end', finish);
      socket.off('close', finish);
      socket.pause();
      resolve(held);
    };
    const onData = (chunk: Buffer): void => {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      while (held.length >= ENCRYPTION_REQUEST_BYTES) {
        const length = held.readInt32BE(0);
        const code = held.readInt32BE(4);
        const ssl = code === SSL_REQUEST && !sslDone;
        const gss = code === GSSENC_REQUEST && !gssDone;
        if (length !== ENCRYPTION_REQUEST_BYTES || !(ssl || gss)) {
          finish();
          return;
        }
        if (ssl) sslDone = true;
        else gssDone = true;
        held = held.subarray(ENCRYPTION_REQUEST_BYTES);
        socket.write(NO);
      }
      // Fewer than 8 bytes: either the rest of a request, or the start of a startup packet.
      if (held.length > 0 && !couldBeEncryptionRequest(held)) finish();
    };
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('close', finish);
    socket.resume();
  });
}

/** Whether a partial packet can still turn out to be an SSLRequest or GSSENCRequest. */
function couldBeEncryptionRequest(partial: Buffer): boolean {
  const prefix = Buffer.alloc(ENCRYPTION_REQUEST_BYTES);
  prefix.writeInt32BE(ENCRYPTION_REQUEST_BYTES, 0);
  prefix.writeInt32BE(SSL_REQUEST, 4);
  if (partial.equals(prefix.subarray(0, partial.length))) return true;
  prefix.writeInt32BE(GSSENC_REQUEST, 4);
  return partial.equals(prefix.subarray(0, partial.length));
}
