/**
 * Local users' passwords: scrypt (memory-hard), a random salt per password, stored as
 * `scrypt$N$r$p$<salt b64url>$<hash b64url>`, compared in constant time. Parameters are read back
 * from the stored string (bounded), so they can be raised later without breaking old hashes.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { HoopError } from '@hoop/shared';

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** N = 2^15, r = 8: 32 MiB and tens of milliseconds per guess. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_BYTES = 1024;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFKC'),
      salt,
      KEY_BYTES,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** Rejects passwords that are too short or too long (INVALID_REQUEST, never echoing them). */
export function validatePassword(password: unknown): string {
  if (typeof password !== 'string') {
    throw new HoopError('INVALID_REQUEST', 'the password must be a string');
  }
  if ([...password].length < MIN_PASSWORD_CHARS) {
    throw new HoopError(
      'INVALID_REQUEST',
      `the password must have at least ${MIN_PASSWORD_CHARS} characters`,
    );
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new HoopError(
      'INVALID_REQUEST',
      `the password must be at most ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
  return password;
}

export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

function parseHash(
  stored: string,
): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const powerOfTwo = Number.isInteger(N) && N >= 2 ** 10 && N <= 2 ** 20 && (N & (N - 1)) === 0;
  if (
    !powerOfTwo ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > 32 ||
    !Number.isInteger(p) ||
    p < 1 ||
    p > 16
  )
    return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const key = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined;
  return { params: { N, r, p }, salt, key };
}

/** A hash of a random password, to spend the same time when there is no such user. */
let decoy: Promise<string> | undefined;

/**
 * Whether `password` matches `stored`. With `stored` undefined (no such user, or no password),
 * it still runs one derivation and answers false, so timing does not tell which part was wrong.
 */
export async function verifyPassword(
  password: string,
  stored: string | undefined | null,
): Promise<boolean> {
  const parsed = stored ? parseHash(stored) : undefined;
  if (parsed === undefined) {
    decoy ??= hashPassword(randomBytes(16).toString('base64url'));
    const fallback = parseHash(await decoy);
    if (fallback !== undefined) {
      const key = await derive(password, fallback.salt, fallback.params);
      timingSafeEqual(key, fallback.key);
    }
    return false;
  }
  const key = await derive(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}
