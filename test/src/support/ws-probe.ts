/**
 * Raw WebSockets to the broker's tunnel endpoints (/v1/agent, /v1/tunnel), for tests that send
 * bytes no hoop process would: hand-built frames (9-byte header: kind u8, stream u32, length u32,
 * big-endian; see shared/src/tunnel/frame.ts) and a correct hello when a test needs to get past
 * the handshake. Reports how the broker closed the socket and the stream-0 error it sent first.
 */
import { type ControlMessage, decodeControl, type ErrorBody, PROTOCOL_VERSION } from '@hoop/shared';
import WebSocket from 'ws';

export const Kind = { data: 0x01, control: 0x02, window: 0x03 } as const;

/** One frame; `declaredLength` lets a test lie in the length field. */
export function frame(kind: number, stream: number, body: Buffer, declaredLength?: number): Buffer {
  const header = Buffer.alloc(9);
  header[0] = kind;
  header.writeUInt32BE(stream, 1);
  header.writeUInt32BE(declaredLength ?? body.length, 5);
  return Buffer.concat([header, body]);
}

/**
 * A hello control frame on stream 0. Its msgpack body is written by hand (a fixmap of five
 * entries) so a test can send any version, independent of the encoder under test.
 */
export function helloFrame(role: 'agent' | 'cli', version: number = PROTOCOL_VERSION): Buffer {
  const str = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
  const u32 = (n: number) => {
    const b = Buffer.alloc(5);
    b[0] = 0xce;
    b.writeUInt32BE(n, 1);
    return b;
  };
  const body = Buffer.concat([
    Buffer.from([0x85]),
    str('t'),
    str('hello'),
    str('version'),
    u32(version),
    str('role'),
    str(role),
    str('window'),
    u32(1024 * 1024),
    str('maxFrameBytes'),
    u32(256 * 1024),
  ]);
  return frame(Kind.control, 0, body);
}

/** An `open` control frame on stream 1 (fixmap {t: 'open', connection}), written by hand. */
function openFrame(connection: string): Buffer {
  const str = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
  if (connection.length > 31) throw new Error('connection name too long for a fixstr');
  const body = Buffer.concat([
    Buffer.from([0x82]),
    str('t'),
    str('open'),
    str('connection'),
    str(connection),
  ]);
  return frame(Kind.control, 1, body);
}

export interface ProbeOutcome {
  /** WebSocket close code the broker sent. */
  readonly code: number;
  readonly reason: string;
  /** Control messages received (the broker's hello, its stream-0 error, …). */
  readonly received: ControlMessage[];
  /** The error the broker announced on stream 0 before closing, if any. */
  readonly error: ErrorBody | undefined;
}

export function wsUrl(brokerUrl: string, path: '/v1/agent' | '/v1/tunnel'): string {
  const url = new URL(path, brokerUrl);
  url.protocol = 'ws:';
  return url.toString();
}

/**
 * Opens `path` with `token`; if `handshake` is set, first sends a valid hello and waits for the
 * broker's; then sends each message of `send` as one binary WebSocket message and waits (bounded)
 * for the broker to close the socket.
 */
export function probe(options: {
  brokerUrl: string;
  path: '/v1/agent' | '/v1/tunnel';
  token: string;
  send: readonly Buffer[];
  handshake?: 'agent' | 'cli';
  /** After the handshake, open stream 1 to this connection and wait for open-ok (CLI only). */
  open?: string;
  /** With `open`: send right after the open frame, without waiting for open-ok (early data). */
  early?: boolean;
  timeoutMs?: number;
}): Promise<ProbeOutcome> {
  return new Promise<ProbeOutcome>((resolve, reject) => {
    const ws = new WebSocket(wsUrl(options.brokerUrl, options.path), {
      headers: { authorization: `Bearer ${options.token}` },
      perMessageDeflate: false,
    });
    const received: ControlMessage[] = [];
    let undecodable = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(
        new Error(
          `the broker did not close the socket within ${options.timeoutMs ?? 10_000} ms (received ${JSON.stringify(received)})`,
        ),
      );
    }, options.timeoutMs ?? 10_000);
    const sendAll = () => {
      for (const message of options.send) ws.send(message, { binary: true });
    };
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      reject(new Error(`the upgrade was refused with HTTP ${res.statusCode}`));
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('open', () => {
      if (options.handshake === undefined) sendAll();
      else ws.send(helloFrame(options.handshake), { binary: true });
    });
    ws.on('message', (data: Buffer) => {
      for (const control of controlsIn(data)) {
        if (control === undefined) {
          undecodable++;
          continue;
        }
        received.push(control);
        if (control.t === 'hello' && options.handshake !== undefined) {
          if (options.open === undefined) sendAll();
          else {
            ws.send(openFrame(options.open), { binary: true });
            if (options.early === true) sendAll();
          }
        }
        if (control.t === 'open-ok' && options.open !== undefined && options.early !== true) {
          sendAll();
        }
      }
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      if (undecodable > 0) {
        reject(new Error(`the broker sent ${undecodable} control frame(s) that do not decode`));
        return;
      }
      const error = received.find((m) => m.t === 'error');
      resolve({
        code,
        reason: reason.toString('utf8'),
        received,
        error: error?.t === 'error' ? error.error : undefined,
      });
    });
  });
}

/** The control messages in one WebSocket message (undefined for one that does not decode). */
function controlsIn(data: Buffer): (ControlMessage | undefined)[] {
  const out: (ControlMessage | undefined)[] = [];
  let offset = 0;
  while (data.length - offset >= 9) {
    const kind = data[offset] as number;
    const length = data.readUInt32BE(offset + 5);
    const body = data.subarray(offset + 9, offset + 9 + length);
    if (kind === Kind.control) {
      try {
        out.push(decodeControl(body));
      } catch {
        out.push(undefined);
      }
    }
    offset += 9 + length;
  }
  return out;
}

/** Attempts an upgrade and returns the HTTP status and body the broker refused it with. */
export function refusedUpgrade(options: {
  brokerUrl: string;
  path: '/v1/agent' | '/v1/tunnel';
  token?: string;
}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(options.brokerUrl, options.path), {
      headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', (err) => reject(err));
  });
}
