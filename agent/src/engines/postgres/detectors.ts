/**
 * Value detectors: find sensitive values anywhere inside a text (a whole column value, a JSON
 * document, a COPY row, an error message). Each candidate found by a pattern is confirmed by a
 * checksum where one exists (Luhn for cards; mod-97 and the country's registered length for
 * IBANs), so ordinary numbers and hashes pass through. Patterns are linear (no nested
 * quantifiers over the same characters).
 */
import type { DetectorName } from '@hoop/shared';

export interface DetectorHit {
  readonly detector: DetectorName;
  readonly start: number;
  readonly end: number;
}

/** Luhn checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Total IBAN length (country code + check digits + BBAN) per IBAN country code, from the "IBAN
 * length" row of the SWIFT IBAN Registry, Release 102 (June 2026, TXT edition); SWIFT is the
 * ISO 13616 registration authority. Cross-checked against the ibantools country table (same
 * length for all 87 codes it has; OM and YE checked against the Intervention/validation table)
 * and java-iban's (registry release 90), which differs only for BI and NI, where it still had
 * pre-registry "experimental" lengths (16, 32): the registry's 27 and 28 are used. Territories
 * the registry files under another country's code (AX under FI; GF, GP, MQ, RE, PF, TF, YT, NC,
 * BL, MF, PM, WF under FR; IM, JE, GG under GB) have no entry of their own, nor do the
 * "partial IBAN" countries outside the registry that some libraries list (AO, DZ, MA, SN, ...).
 */
// biome-ignore format: one row per initial letter keeps the table readable
const ibanLengths: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28,
  BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DJ: 27, DK: 18, DO: 28,
  EE: 20, EG: 29, ES: 24,
  FI: 18, FK: 18, FO: 18, FR: 27,
  GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28,
  HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27,
  JO: 30,
  KW: 30, KZ: 20,
  LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25,
  MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30,
  NI: 28, NL: 18, NO: 15,
  OM: 23,
  PK: 24, PL: 28, PS: 29, PT: 25,
  QA: 29,
  RO: 24, RS: 22, RU: 33,
  SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26,
  UA: 29,
  VA: 22, VG: 24,
  XK: 20,
  YE: 30,
};

/** 0..675 for two ASCII letters of either case. */
function ibanCode(first: number, second: number): number {
  return ((first & 0xdf) - 65) * 26 + ((second & 0xdf) - 65);
}

/** `ibanLengths` indexed by `ibanCode`, 0 for no IBAN: a lookup that allocates nothing. */
const ibanLengthByCode = new Uint8Array(26 * 26);
for (const [country, length] of Object.entries(ibanLengths)) {
  ibanLengthByCode[ibanCode(country.charCodeAt(0), country.charCodeAt(1))] = length;
}

/**
 * ISO 13616 IBAN check: a registered country code, exactly that country's length, two check
 * digits, and mod 97 = 1 after moving the first four characters to the end and letters to
 * numbers. The length check is what keeps hashes out: the mod-97 test alone passes one random
 * string in 97.
 */
export function ibanValid(candidate: string): boolean {
  const iban = candidate.replace(/ /g, '').toUpperCase();
  if (iban.length !== ibanLengths[iban.slice(0, 2)]) return false;
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? String(code - 55) : ch;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

interface Pattern {
  readonly detector: DetectorName;
  readonly regex: RegExp;
  /** Cheap pre-check on the whole text's features. */
  readonly gate: (features: TextFeatures) => boolean;
  /** Confirms a candidate; may narrow it to the part that is really sensitive. */
  readonly confirm?: (match: string) => Array<{ start: number; end: number }>;
  /**
   * For a value whose extent a regex cannot tell: `regex` finds where one may start, and this
   * returns where the value starting there ends, or -1 for none.
   */
  readonly extent?: (text: string, start: number) => number;
  /** Rules a candidate out by what surrounds it in the text. */
  readonly reject?: (text: string, start: number, end: number) => boolean;
}

/** Hex digests (md5 32, sha1 40, sha256 64 characters, …) are at least this long. */
const MIN_DIGEST_CHARS = 32;

const isHex = (c: number) => (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);

/**
 * Whether [start, end) lies inside a hex digest: the whole alphanumeric token around it is hex
 * digits, at least MIN_DIGEST_CHARS long, with at least one letter. A digest has 13+-digit runs
 * that pass Luhn in about 0.6% of md5 hashes; masking those corrupts checksums and ids, and a
 * card number glued to 16+ more hex characters is not how card numbers are written.
 */
function insideHexDigest(text: string, start: number, end: number): boolean {
  let from = start;
  while (from > 0 && isAlnum(text.charCodeAt(from - 1))) from--;
  let to = end;
  while (to < text.length && isAlnum(text.charCodeAt(to))) to++;
  if (to - from < MIN_DIGEST_CHARS) return false;
  let letter = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (!isHex(c)) return false;
    if (c > 57) letter = true;
  }
  return letter;
}

/**
 * A card number inside a run of digits (with space/dash separators): the whole run when it
 * passes Luhn; else the printed groups that make one (`qty 3 4111 1111 1111 1111` is the card
 * after the `3`, not a 16-digit window starting at it, which would leave the card's last
 * digits showing); else the first 13–19-digit window that does, so padding digits around a card
 * number do not hide it.
 */
function findCard(run: string): Array<{ start: number; end: number }> {
  const positions: number[] = [];
  /** Index into `positions` where each separator-delimited group starts. */
  const groups: number[] = [];
  let digits = '';
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (i === 0 || !(run.charCodeAt(i - 1) >= 48 && run.charCodeAt(i - 1) <= 57)) {
        groups.push(positions.length);
      }
      positions.push(i);
      digits += run[i];
    }
  }
  if (digits.length <= 19 && luhnValid(digits)) return [{ start: 0, end: run.length }];
  const span = (from: number, to: number) => ({
    start: positions[from] as number,
    end: (positions[to - 1] as number) + 1,
  });
  const found: Array<{ start: number; end: number }> = [];
  // Whole groups first: the longest span of consecutive groups, from each group on.
  groups.push(digits.length);
  let g = 0;
  groupScan: while (g < groups.length - 1) {
    for (let h = groups.length - 1; h > g; h--) {
      const from = groups[g] as number;
      const to = groups[h] as number;
      const len = to - from;
      if (len >= 13 && len <= 19 && luhnValid(digits.slice(from, to))) {
        found.push(span(from, to));
        g = h;
        continue groupScan;
      }
    }
    g++;
  }
  if (found.length > 0) return found;
  let i = 0;
  scan: while (i + 13 <= digits.length) {
    for (const len of [16, 15, 14, 13, 19, 18, 17]) {
      if (i + len <= digits.length && luhnValid(digits.slice(i, i + len))) {
        found.push(span(i, i + len));
        i += len;
        continue scan;
      }
    }
    i++;
  }
  return found;
}

const isAlnum = (c: number) => (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122);
/** A `\w` character (what ends a `\b` word); NaN past the end is none. */
const isWordChar = (c: number) => isAlnum(c) || c === 95;

/**
 * The end of the IBAN that starts at `start` (two letters and two digits at a word start), or
 * -1. An IBAN has exactly its country's registered number of characters, so the candidate is
 * that many letters and digits, a single space allowed before each (print format groups them
 * by four), ending at a word boundary and passing `ibanValid`. Counting instead of matching a
 * run is what finds `DE89 3704 0044 0532 0130 00 for rent`: a run would take the following
 * words too and fail the length check. Followed by a word character (`DE89…3000X`), the
 * candidate is part of a longer token and not an IBAN: the `\b` this pattern always had, as the
 * SSN and phone patterns do not take a value glued to more digits (cards are the exception,
 * looked for inside longer digit runs). A following separate word (`… 00 12`) is not part of
 * it: the country's length says where the IBAN ends.
 */
function ibanEnd(text: string, start: number): number {
  const length = ibanLengthByCode[ibanCode(text.charCodeAt(start), text.charCodeAt(start + 1))];
  if (length === undefined || length === 0) return -1;
  let i = start + 4;
  for (let n = 4; n < length; n++) {
    if (text.charCodeAt(i) === 32) i++;
    if (!isAlnum(text.charCodeAt(i))) return -1;
    i++;
  }
  if (isWordChar(text.charCodeAt(i))) return -1;
  return ibanValid(text.slice(start, i)) ? i : -1;
}

/** What the detectors' gates look at, gathered in one pass over a text. */
export interface TextFeatures {
  readonly digits: number;
  /** Longest run of digits separated by at most one space or dash (what a card needs). */
  readonly longestRun: number;
  readonly at: boolean;
  readonly plus: boolean;
  readonly dash: boolean;
  /** `_`, `eyJ`, `AKIA` or `xox?-`: what a token or API key starts with or contains. */
  readonly keyish: boolean;
  /** Two letters and two digits at a word's start: where the IBAN pattern can match. */
  readonly ibanStart: boolean;
}

// Character classes of the features pass, by byte. Only ASCII has a class: every byte of a
// multi-byte UTF-8 character is >= 0x80, so the features of a text's UTF-8 bytes (or of a
// Latin-1 text's bytes) are the features of its characters.
const DIGIT = 1;
const LETTER = 2;
/** Space or dash: may separate the digit groups of a card. */
const SEPARATOR = 4;
/**
 * `@ + - _`, and the rare letters of `eyJ` and `AKIA`: set a flag. A key's shape is checked
 * around its rarest character (`J`, `K`, the `-` after `xox?`) so that common letters such as
 * `e` take the fast path.
 */
const MARK = 8;
const UNDERSCORE = 16;
/** What `\b` counts as a word character (without the u flag: ASCII only). */
const WORD = DIGIT | LETTER | UNDERSCORE;
const classOf = new Uint8Array(256);
for (let c = 48; c <= 57; c++) classOf[c] = DIGIT;
for (let c = 65; c <= 90; c++) classOf[c] = LETTER;
for (let c = 97; c <= 122; c++) classOf[c] = LETTER;
classOf[32] = SEPARATOR;
classOf[45] = SEPARATOR | MARK;
classOf[64] = MARK;
classOf[43] = MARK;
classOf[95] = UNDERSCORE | MARK;
for (const c of [74, 75]) classOf[c] = LETTER | MARK;

/**
 * One pass instead of a scan per detector: COPY rows and result values are gated here, on their
 * bytes, before they are decoded and before any pattern runs. `longestRun >= n` holds exactly
 * when `\d(?:[ -]?\d){n-1,}` can match; `ibanStart` exactly when `\b[A-Z]{2}\d{2}` (case
 * insensitive) can. A string is looked at as its UTF-8 bytes; bytes from `from` up to `to`.
 */
export function featuresOf(input: string | Uint8Array, from = 0, to?: number): TextFeatures {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let digits = 0;
  let run = 0;
  let longestRun = 0;
  let separated = false;
  let at = false;
  let plus = false;
  let dash = false;
  let keyish = false;
  let ibanStart = false;
  const n = to ?? bytes.length;
  for (let i = from; i < n; i++) {
    const k = classOf[bytes[i] as number] as number;
    if (k === DIGIT) {
      digits++;
      if (++run > longestRun) longestRun = run;
      separated = false;
      // The second of two digits after two letters that start a word.
      if (
        !ibanStart &&
        i >= from + 3 &&
        classOf[bytes[i - 1] as number] === DIGIT &&
        ((classOf[bytes[i - 2] as number] as number) & LETTER) !== 0 &&
        ((classOf[bytes[i - 3] as number] as number) & LETTER) !== 0 &&
        (i === from + 3 || ((classOf[bytes[i - 4] as number] as number) & WORD) === 0)
      ) {
        ibanStart = true;
      }
      continue;
    }
    if ((k & SEPARATOR) !== 0 && run > 0 && !separated) separated = true;
    else {
      run = 0;
      separated = false;
    }
    if ((k & MARK) === 0) continue;
    const c = bytes[i] as number;
    if (c === 64) at = true;
    else if (c === 43) plus = true;
    else if (c === 45) {
      dash = true;
      // `xox?-`: a Slack token's prefix.
      keyish ||=
        i >= from + 4 && bytes[i - 4] === 120 && bytes[i - 3] === 111 && bytes[i - 2] === 120;
    } else if (c === 95) keyish = true;
    else if (c === 74) {
      // `eyJ`: a JWT's start.
      keyish ||= i >= from + 2 && bytes[i - 2] === 101 && bytes[i - 1] === 121;
    } else {
      // `AKIA`: an AWS access key id's start.
      keyish ||=
        i > from && i + 2 < n && bytes[i - 1] === 65 && bytes[i + 1] === 73 && bytes[i + 2] === 65;
    }
  }
  return { digits, longestRun, at, plus, dash, keyish, ibanStart };
}

const patterns: readonly Pattern[] = [
  {
    detector: 'jwt',
    // JWTs, and well-known API key shapes (Stripe, AWS access key ids, GitHub, Slack).
    regex:
      /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|\b(?:[sprk]k_(?:live|test)_[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,})/g,
    gate: (f) => f.keyish,
  },
  {
    detector: 'email',
    regex: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
    gate: (f) => f.at,
  },
  {
    detector: 'iban',
    // Where an IBAN may start; every such place is tried, also inside an earlier candidate.
    regex: /\b[A-Z]{2}\d{2}/gi,
    gate: (f) => f.ibanStart,
    extent: ibanEnd,
  },
  {
    detector: 'credit_card',
    regex: /\d(?:[ -]?\d){12,}/g,
    gate: (f) => f.longestRun >= 13,
    confirm: findCard,
    reject: insideHexDigest,
  },
  {
    detector: 'us_ssn',
    regex: /(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)/g,
    gate: (f) => f.dash && f.digits >= 9,
  },
  {
    detector: 'phone',
    // E.164-ish: a leading +, 8 to 15 digits with optional single separators.
    regex: /(?<![\w+])\+\d(?:[ .-]?\(?\d\)?){7,14}(?!\d)/g,
    gate: (f) => f.plus,
  },
];

/** The patterns of each set of enabled detectors (a policy's set lives as long as its session). */
const enabledPatterns = new WeakMap<ReadonlySet<DetectorName>, readonly Pattern[]>();

/** Whether an enabled detector's gate passes: when none does, no pattern can match the text. */
export function anyGatePasses(features: TextFeatures, enabled: ReadonlySet<DetectorName>): boolean {
  let list = enabledPatterns.get(enabled);
  if (list === undefined) {
    list = patterns.filter((p) => enabled.has(p.detector));
    enabledPatterns.set(enabled, list);
  }
  for (const pattern of list) if (pattern.gate(features)) return true;
  return false;
}

/**
 * Hits of `enabled` detectors in `text`, sorted, non-overlapping (first detector wins).
 * `features`: the text's, when the caller has them already (from its bytes).
 */
export function detect(
  text: string,
  enabled: ReadonlySet<DetectorName>,
  features?: TextFeatures,
): DetectorHit[] {
  if (text.length < 6) return [];
  let hits: DetectorHit[] | undefined;
  for (const pattern of patterns) {
    if (!enabled.has(pattern.detector)) continue;
    features ??= featuresOf(text);
    if (!pattern.gate(features)) continue;
    // exec on the pattern's own global regex: matchAll would clone the RegExp on every call,
    // which on a large COPY (one call per row) cost more than the matching.
    const regex = pattern.regex;
    regex.lastIndex = 0;
    for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
      if (match[0].length === 0) regex.lastIndex++; // no pattern matches empty; never loop
      if (pattern.extent !== undefined) {
        const end = pattern.extent(text, match.index);
        if (end >= 0) hits = addHit(hits, pattern.detector, match.index, end);
        continue;
      }
      const ranges =
        pattern.confirm === undefined
          ? [{ start: 0, end: match[0].length }]
          : pattern.confirm(match[0]);
      for (const range of ranges) {
        const start = match.index + range.start;
        const end = match.index + range.end;
        if (pattern.reject?.(text, start, end) === true) continue;
        hits = addHit(hits, pattern.detector, start, end);
      }
    }
  }
  if (hits === undefined) return [];
  return hits.sort((a, b) => a.start - b.start);
}

/**
 * `hits` with a hit added, unless it overlaps another detector's (the first detector wins). A
 * hit overlapping the same detector's last one (a pattern's hits come in order) is merged into
 * it, so that neither part is left showing: e.g. a word that happens to be a valid IBAN's start
 * and end inside a real IBAN's groups.
 */
function addHit(
  hits: DetectorHit[] | undefined,
  detector: DetectorName,
  start: number,
  end: number,
): DetectorHit[] {
  if (hits === undefined) return [{ detector, start, end }];
  const last = hits[hits.length - 1];
  for (const h of hits) {
    if (start < h.end && h.start < end && (h !== last || h.detector !== detector)) return hits;
  }
  if (last !== undefined && last.detector === detector && start < last.end) {
    if (end > last.end) hits[hits.length - 1] = { detector, start: last.start, end };
    return hits;
  }
  hits.push({ detector, start, end });
  return hits;
}

/** Replaces every hit by `[redacted:<detector>]`; counts hits per detector into `counts`. */
export function redactDetected(
  text: string,
  enabled: ReadonlySet<DetectorName>,
  counts?: Map<string, number>,
  features?: TextFeatures,
): string | undefined {
  const hits = detect(text, enabled, features);
  if (hits.length === 0) return undefined;
  let out = '';
  let last = 0;
  for (const hit of hits) {
    out += `${text.slice(last, hit.start)}[redacted:${hit.detector}]`;
    last = hit.end;
    counts?.set(hit.detector, (counts.get(hit.detector) ?? 0) + 1);
  }
  return out + text.slice(last);
}

/**
 * redactDetected for a value still in bytes (a COPY row, a DataRow value): gated on the bytes,
 * and decoded only when an enabled detector may find something, which most values of most
 * tables never give it.
 */
export function redactDetectedIn(
  bytes: Buffer,
  encoding: 'utf8' | 'latin1',
  enabled: ReadonlySet<DetectorName>,
  counts?: Map<string, number>,
  /** Where the text starts in `bytes` (e.g. after a message's header). */
  from = 0,
): string | undefined {
  if (bytes.length - from < 6 || enabled.size === 0) return undefined;
  const features = featuresOf(bytes, from);
  if (!anyGatePasses(features, enabled)) return undefined;
  return redactDetected(bytes.toString(encoding, from), enabled, counts, features);
}
