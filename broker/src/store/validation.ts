/**
 * Input checks for what users name and type: each failure is an INVALID_REQUEST whose message
 * says which field is wrong and what is expected (never echoing a secret).
 */
import {
  type ConnectionType,
  connectionTypes,
  HoopError,
  isConnectionType,
  type TargetTlsMode,
} from '@hoop/shared';
import { tlsModes } from './schema.js';

/** Names of agents, connections and users: lowercase, digits, `_` and `-`, 1–63 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const tlsModeValues: readonly TargetTlsMode[] = tlsModes;

/** Longest host, user, database or label accepted. */
export const MAX_FIELD_LENGTH = 255;

/** Longest stored password accepted, in characters. */
export const MAX_PASSWORD_LENGTH = 4096;

function invalid(message: string): HoopError {
  return new HoopError('INVALID_REQUEST', message);
}

export function validateName(kind: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    const shown = typeof value === 'string' ? ` "${value.slice(0, 80)}"` : '';
    throw invalid(
      `Invalid ${kind} name${shown}: use 1-63 characters from a-z, 0-9, "_" and "-", starting with a letter or digit.`,
    );
  }
  return value;
}

export function validatePort(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(`Invalid port ${String(value)}: expected an integer from 1 to 65535.`);
  }
  return value;
}

export function validateConnectionType(value: unknown): ConnectionType {
  if (!isConnectionType(value)) {
    throw invalid(
      `Unsupported connection type "${String(value).slice(0, 40)}": expected one of ${connectionTypes.join(', ')}.`,
    );
  }
  return value;
}

export function validateTlsMode(value: unknown): TargetTlsMode {
  if (value === undefined) return 'prefer';
  if (typeof value !== 'string' || !(tlsModeValues as readonly string[]).includes(value)) {
    throw invalid(
      `Invalid tls mode "${String(value).slice(0, 40)}": expected one of ${tlsModeValues.join(', ')}.`,
    );
  }
  return value as TargetTlsMode;
}

/** A short free-text field (host, user, database, token label): non-empty, no control chars. */
export function validateText(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(`Missing ${field}: expected a non-empty string.`);
  }
  if (value.length > MAX_FIELD_LENGTH) {
    throw invalid(`Invalid ${field}: longer than ${MAX_FIELD_LENGTH} characters.`);
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(`Invalid ${field}: control characters are not allowed.`);
  }
  return value;
}

/** A host name or IP address literal: as validateText, and no whitespace. */
export function validateHost(value: unknown): string {
  const host = validateText('host', value);
  if (/\s/.test(host)) throw invalid('Invalid host: whitespace is not allowed.');
  return host;
}

export function validatePassword(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid('Invalid password: expected a non-empty string (omit it for no credential).');
  }
  if (value.length > MAX_PASSWORD_LENGTH) {
    throw invalid(`Invalid password: longer than ${MAX_PASSWORD_LENGTH} characters.`);
  }
  return value;
}

/** Milliseconds since the epoch, as taken by options such as `expiresAt`. */
export function validateTimestamp(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`Invalid ${field}: expected milliseconds since the epoch.`);
  }
  return value;
}

export function validateByteCount(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`Invalid ${field}: expected a non-negative integer.`);
  }
  return value;
}
