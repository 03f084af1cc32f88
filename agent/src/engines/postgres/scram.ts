/**
 * SCRAM-SHA-256 client (RFC 5802 with RFC 7677's SHA-256), without channel binding, as PostgreSQL
 * speaks it: the user name in the client-first message is empty (the server uses the startup
 * user). The client proves it knows the password and checks that the server does too, by
 * verifying the server signature before the session is trusted.
 * https://www.rfc-editor.org/rfc/rfc5802 , https://www.rfc-editor.org/rfc/rfc7677 ,
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { PgFailure, PostgresEngineError } from './errors.js';
import { SqlState } from './messages.js';
import { saslprep } from './saslprep.js';

const pbkdf2Async = promisify(pbkdf2);

/** GS2 header for "no channel binding, no authzid": `n,,`; its base64 is `biws`. */
const GS2_HEADER = 'n,,';

export interface ScramClientOptions {
  /** SCRAM user name; PostgreSQL ignores it and expects it empty. */
  readonly username?: string;
  /** Client nonce; random 18 bytes (base64) by default. Fixed only in tests. */
  readonly nonce?: string;
  /** Largest iteration count accepted from the server (bounds the PBKDF2 work it can demand). */
  readonly maxIterations?: number;
}

export const DEFAULT_MAX_SCRAM_ITERATIONS = 1_000_000;

function scramError(message: string): PostgresEngineError {
  return new PostgresEngineError('TARGET_AUTH_FAILED', PgFailure.scramFailed, 'target', message, {
    response: {
      severity: 'FATAL',
      code: SqlState.invalidAuthorizationSpecification,
      message: `hoop: SCRAM-SHA-256 authentication to the target failed: ${message}`,
    },
  });
}

/** SaltedPassword := Hi(Normalize(password), salt, i) — PBKDF2 with HMAC-SHA-256. */
export async function scramSaltedPassword(
  password: string,
  salt: Buffer,
  iterations: number,
): Promise<Buffer> {
  return pbkdf2Async(saslprep(password), salt, iterations, 32, 'sha256');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** ClientProof := ClientKey XOR HMAC(H(ClientKey), AuthMessage), ClientKey := HMAC(SaltedPassword, "Client Key"). */
export function scramClientProof(saltedPassword: Buffer, authMessage: string): Buffer {
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.allocUnsafe(clientKey.length);
  for (let i = 0; i < clientKey.length; i++) {
    proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
  }
  return proof;
}

/** ServerSignature := HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage). */
export function scramServerSignature(saltedPassword: Buffer, authMessage: string): Buffer {
  return hmac(hmac(saltedPassword, 'Server Key'), authMessage);
}

/** Parses `a=value,b=value` SCRAM attributes; the first occurrence of each wins. */
function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const match = /^([A-Za-z])=(.*)$/s.exec(part);
    if (match === null) throw scramError(`malformed SCRAM attribute in "${truncate(message)}"`);
    const [, name, value] = match as unknown as [string, string, string];
    if (!attributes.has(name)) attributes.set(name, value);
  }
  return attributes;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** SASLname escaping (RFC 5802 §5.1): `=` → `=3D`, `,` → `=2C`. */
function saslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/** One SCRAM-SHA-256 exchange: client-first → server-first → client-final → server-final. */
export class ScramSha256Client {
  private readonly password: string;
  private readonly nonce: string;
  private readonly maxIterations: number;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;
  private state: 'initial' | 'first-sent' | 'final-sent' | 'verified' = 'initial';

  constructor(password: string, options: ScramClientOptions = {}) {
    this.password = password;
    this.nonce = options.nonce ?? randomBytes(18).toString('base64');
    this.maxIterations = options.maxIterations ?? DEFAULT_MAX_SCRAM_ITERATIONS;
    this.clientFirstBare = `n=${saslName(options.username ?? '')},r=${this.nonce}`;
  }

  /** True once the server proved it knows the password. */
  get verified(): boolean {
    return this.state === 'verified';
  }

  /** client-first-message: `n,,n=<user>,r=<client nonce>`. */
  clientFirst(): string {
    this.transition('initial', 'first-sent');
    return GS2_HEADER + this.clientFirstBare;
  }

  /**
   * Takes server-first-message `r=<nonce>,s=<salt>,i=<iterations>` and returns
   * client-final-message `c=biws,r=<nonce>,p=<proof>`.
   */
  async clientFinal(serverFirst: string): Promise<string> {
    this.transition('first-sent', 'final-sent');
    const attributes = parseAttributes(serverFirst);
    if (attributes.has('m')) throw scramError('the server requires an unsupported SCRAM extension');
    const nonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterationsText = attributes.get('i');
    if (nonce === undefined || salt === undefined || iterationsText === undefined) {
      throw scramError('server-first-message lacks a nonce, salt or iteration count');
    }
    if (!nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) {
      throw scramError("the server nonce does not extend the client's nonce");
    }
    if (salt.length === 0 || !BASE64.test(salt)) throw scramError('the server salt is not base64');
    if (!/^[1-9][0-9]{0,9}$/.test(iterationsText)) {
      throw scramError(`invalid iteration count "${truncate(iterationsText)}"`);
    }
    const iterations = Number(iterationsText);
    if (iterations > this.maxIterations) {
      throw scramError(
        `the server asks for ${iterations} iterations, over the ${this.maxIterations} limit`,
      );
    }
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const salted = await scramSaltedPassword(
      this.password,
      Buffer.from(salt, 'base64'),
      iterations,
    );
    this.expectedServerSignature = scramServerSignature(salted, authMessage);
    return `${withoutProof},p=${scramClientProof(salted, authMessage).toString('base64')}`;
  }

  /** Checks server-final-message `v=<server signature>` (or reports `e=<error>`). */
  verifyServerFinal(serverFinal: string): void {
    if (this.state !== 'final-sent') {
      throw scramError(`unexpected SCRAM server-final message in state ${this.state}`);
    }
    const attributes = parseAttributes(serverFinal);
    const error = attributes.get('e');
    if (error !== undefined) throw scramError(`the server reported "${truncate(error)}"`);
    const verifier = attributes.get('v');
    const expected = this.expectedServerSignature;
    if (verifier === undefined || !BASE64.test(verifier) || expected === undefined) {
      throw scramError('server-final-message lacks a server signature');
    }
    const actual = Buffer.from(verifier, 'base64');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw scramError(
        'the server signature does not match: the target did not prove it knows the password',
      );
    }
    this.state = 'verified';
  }

  private transition(from: typeof this.state, to: typeof this.state): void {
    if (this.state !== from) {
      throw scramError(`unexpected SCRAM message in state ${this.state}`);
    }
    this.state = to;
  }
}
