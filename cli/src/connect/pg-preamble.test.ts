import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { answerPostgresEncryption } from './pg-preamble.js';

function packet(code: number, body = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(code, 4);
  body.copy(out, 8);
  return out;
}

const SSL = packet(80877103);
const GSS = packet(80877104);
const STARTUP = packet(196608, Buffer.from('user\0alice\0database\0app\0\0'));
const CANCEL = packet(80877102, Buffer.from([0, 0, 0, 42, 1, 2, 3, 4]));

describe('answerPostgresEncryption', () => {
  let server: Server;
  let port: number;
  const results: Array<Promise<Buffer>> = [];

  before(async () => {
    server = createServer({ pauseOnConnect: true }, (socket) => {
      socket.on('error', () => {});
      results.push(answerPostgresEncryption(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  /** Sends `parts` one by one (each after the answers so far), returns what came back and what the preamble held. */
  async function exchange(
    parts: Buffer[],
    opts: { close?: boolean; waitAnswers?: (number | undefined)[] } = {},
  ): Promise<{ answers: string; held: Buffer }> {
    const client: Socket = connect(port, '127.0.0.1');
    await once(client, 'connect');
    let answers = '';
    client.on('data', (d: Buffer) => {
      answers += d.toString('latin1');
    });
    for (const [i, part] of parts.entries()) {
      client.write(part);
      const want = opts.waitAnswers?.[i];
      if (want !== undefined) {
        for (let t = 0; t < 200 && answers.length < want; t++)
          await new Promise((r) => setTimeout(r, 5));
      } else {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    if (opts.close === true) client.end();
    for (let t = 0; t < 200 && results.length === 0; t++)
      await new Promise((r) => setTimeout(r, 5));
    const held = await (results.shift() as Promise<Buffer>);
    await new Promise((r) => setTimeout(r, 10));
    client.destroy();
    return { answers, held };
  }

  it("answers SSLRequest with 'N' and holds the StartupMessage untouched", async () => {
    const { answers, held } = await exchange([SSL, STARTUP], { waitAnswers: [1] });
    assert.equal(answers, 'N');
    assert.deepEqual(held, STARTUP);
  });

  it('answers an SSLRequest that arrives split at every offset', async () => {
    for (let cut = 1; cut < SSL.length; cut++) {
      const { answers, held } = await exchange([SSL.subarray(0, cut), SSL.subarray(cut), STARTUP], {
        waitAnswers: [undefined, 1],
      });
      assert.equal(answers, 'N', `cut at ${cut}`);
      assert.deepEqual(held, STARTUP, `cut at ${cut}`);
    }
  });

  it('answers GSSENCRequest then SSLRequest, once each', async () => {
    const { answers, held } = await exchange([GSS, SSL, STARTUP], { waitAnswers: [1, 2] });
    assert.equal(answers, 'NN');
    assert.deepEqual(held, STARTUP);
  });

  it('passes a repeated SSLRequest through unanswered, for the server side to refuse', async () => {
    const { answers, held } = await exchange([SSL, SSL], { waitAnswers: [1] });
    assert.equal(answers, 'N');
    assert.deepEqual(held, SSL);
  });

  it('holds a StartupMessage or CancelRequest sent first, without answering', async () => {
    for (const first of [STARTUP, CANCEL]) {
      const { answers, held } = await exchange([first]);
      assert.equal(answers, '');
      assert.deepEqual(held, first);
    }
  });

  it('resolves empty when the client leaves before saying anything', async () => {
    const { answers, held } = await exchange([], { close: true });
    assert.equal(answers, '');
    assert.equal(held.length, 0);
  });
});
