/**
 * Connection secrets at rest: AES-256-GCM under one 32-byte master key.
 *
 * The master key comes from HOOP_MASTER_KEY (base64 or 64 hex characters) or, when that is unset,
 * from `<dataDir>/master.key`, created on first start with mode 0600. Ciphertexts are versioned
 * strings so the format (or the key) can change later:
 *
 *   v1:<iv, 12 bytes, base64>:<GCM tag, 16 bytes, base64>:<ciphertext, base64>
 *
 * An optional `aad` (additional authenticated data, e.g. the owning row's id) binds a ciphertext
 * to its place: copied to another row it no longer decrypts. Errors never contain key material,
 * plaintext or ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HoopError, type Logger } from '@hoop/shared';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILE = 'master.key';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^(?:[A-Za-z0-9+/]{43}=?|[A-Za-z0-9_-]{43}=?)$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const KEY_FORMAT =
  '32 bytes encoded as base64 (44 characters, e.g. `openssl rand -base64 32`) or as 64 hex characters (`openssl rand -hex 32`)';

export interface LoadMasterKeyOptions {
  /** The value of HOOP_MASTER_KEY, if set; an empty string counts as unset. */
  envValue?: string | undefined;
  /** Where `master.key` is read from or created when `envValue` is unset. */
  dataDir: string;
  logger?: Logger;
}

/** Parses a master key as typed by an operator; undefined when it is not a 32-byte key. */
export function parseMasterKey(value: string): Buffer | undefined {
  const text = value.trim();
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const key = Buffer.from(
      text,
      text.includes('-') || text.includes('_') ? 'base64url' : 'base64',
    );
    return key.length === MASTER_KEY_BYTES ? key : undefined;
  }
  return undefined;
}

/**
 * Returns the 32-byte master key: from `envValue` when given, else from `<dataDir>/master.key`,
 * creating that file (random key, mode 0600) when it does not exist.
 */
export function loadMasterKey(options: LoadMasterKeyOptions): Buffer {
  const envValue = options.envValue?.trim();
  if (envValue !== undefined && envValue !== '') {
    const key = parseMasterKey(envValue);
    if (key === undefined) {
      throw new HoopError(
        'INVALID_REQUEST',
        `HOOP_MASTER_KEY is malformed: expected ${KEY_FORMAT}.`,
        {
          hint: 'Fix or unset HOOP_MASTER_KEY (unset, the broker keeps a generated key in <data dir>/master.key).',
        },
      );
    }
    return key;
  }
  const path = join(options.dataDir, MASTER_KEY_FILE);
  const existing = readKeyFile(path, options.logger);
  if (existing !== undefined) return existing;
  return createKeyFile(options.dataDir, path, options.logger);
}

function readKeyFile(path: string, logger: Logger | undefined): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HoopError('INTERNAL', `Cannot read the master key file ${path}: ${errnoOf(err)}.`, {
      hint: 'Check the permissions of the data directory, or set HOOP_MASTER_KEY.',
    });
  }
  const key = parseMasterKey(text);
  if (key === undefined) {
    throw new HoopError(
      'INVALID_REQUEST',
      `The master key file ${path} is malformed: expected ${KEY_FORMAT}.`,
      {
        hint: 'Restore the file from a backup; a new key cannot decrypt the stored secrets.',
      },
    );
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger?.warn('master key file is readable by other users; run chmod 600 on it', {
      path,
      mode: mode.toString(8),
    });
  }
  return key;
}

/**
 * Creates the key file atomically: the key is written and synced to a private temporary file,
 * then hard-linked into place, so a concurrent reader never sees a partial key and two brokers
 * starting at once agree on one key (the loser of the link reads the winner's file).
 */
function createKeyFile(dataDir: string, path: string, logger: Logger | undefined): Buffer {
  const key = randomBytes(MASTER_KEY_BYTES);
  const temp = join(dataDir, `.${MASTER_KEY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(temp, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx', flush: true });
    chmodSync(temp, 0o600);
    try {
      linkSync(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const winner = readKeyFile(path, logger);
      if (winner !== undefined) return winner;
      throw err;
    }
  } catch (err) {
    if (err instanceof HoopError) throw err;
    throw new HoopError('INTERNAL', `Cannot create the master key file ${path}: ${errnoOf(err)}.`, {
      hint: 'Check that the data directory is writable, or set HOOP_MASTER_KEY.',
    });
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // the temporary file was never created
    }
  }
  logger?.info('created a new master key for secrets at rest; back it up', { path });
  return key;
}

function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

export type SecretDecryptionFailure = 'malformed' | 'unsupported-version' | 'authentication-failed';

/**
 * A stored secret could not be decrypted: its text is not a ciphertext this version writes, or it
 * fails authentication (tampered, moved to another row, or encrypted under another master key).
 */
export class SecretDecryptionError extends HoopError {
  readonly reason: SecretDecryptionFailure;

  constructor(reason: SecretDecryptionFailure) {
    super('INTERNAL', `A stored secret could not be decrypted (${reason}).`, {
      hint: 'Check that HOOP_MASTER_KEY (or <data dir>/master.key) is the key the secret was stored with, or store the password again.',
    });
    this.reason = reason;
  }
}

function checkKey(key: Buffer): void {
  if (key.length !== MASTER_KEY_BYTES) {
    throw new HoopError('INTERNAL', `The master key must be ${MASTER_KEY_BYTES} bytes.`);
  }
}

/** Encrypts `plaintext` under `key`; `aad`, when given, must be given again to decrypt. */
export function encryptSecret(key: Buffer, plaintext: string, aad?: string): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  if (aad !== undefined) cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, iv, tag, ciphertext]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64')))
    .join(':');
}

/** Decrypts a string from `encryptSecret`; throws SecretDecryptionError when it cannot. */
export function decryptSecret(key: Buffer, stored: string, aad?: string): string {
  checkKey(key);
  const parts = stored.split(':');
  if (parts.length !== 4) throw new SecretDecryptionError('malformed');
  const [version, ivText, tagText, ctText] = parts as [string, string, string, string];
  if (version !== VERSION) throw new SecretDecryptionError('unsupported-version');
  if (!BASE64.test(ivText) || !BASE64.test(tagText) || !BASE64.test(ctText)) {
    throw new SecretDecryptionError('malformed');
  }
  const iv = Buffer.from(ivText, 'base64');
  const tag = Buffer.from(tagText, 'base64');
  const ciphertext = Buffer.from(ctText, 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES)
    throw new SecretDecryptionError('malformed');
  try {
    const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(tag);
    if (aad !== undefined) decipher.setAAD(Buffer.from(aad, 'utf8'));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretDecryptionError('authentication-failed');
  }
}
