/**
 * SASLprep (RFC 4013) of a SCRAM password, the way PostgreSQL applies it: an ASCII password is
 * used as is; otherwise non-ASCII spaces become U+0020, ignorable characters are dropped and the
 * result is NFKC normalized, and a password that still contains a prohibited character is used
 * unchanged (the server stored its verifier the same way). The bidirectional-text and
 * unassigned-code-point checks are not applied: they only decide whether to fall back to the raw
 * password. https://www.rfc-editor.org/rfc/rfc4013 , PostgreSQL src/common/saslprep.c
 */

type Range = readonly [number, number];

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020. */
const NON_ASCII_SPACE: readonly Range[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 B.1: characters commonly mapped to nothing. */
const MAPPED_TO_NOTHING: readonly Range[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/**
 * RFC 3454 C.2 (control), C.3 (private use), C.4 (non-characters), C.5 (surrogates), C.6–C.9
 * (inappropriate for plain text or canonical representation, display changing, tagging).
 */
const PROHIBITED: readonly Range[] = [
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0x10ffff],
];

function inRanges(codePoint: number, ranges: readonly Range[]): boolean {
  return ranges.some(([low, high]) => codePoint >= low && codePoint <= high);
}

/** U+nFFFE and U+nFFFF are non-characters in every plane. */
function isNonCharacter(codePoint: number): boolean {
  return (codePoint & 0xfffe) === 0xfffe;
}

export function saslprep(password: string): string {
  let ascii = true;
  for (let i = 0; i < password.length; i++) {
    if (password.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return password;
  let mapped = '';
  for (const char of password) {
    const codePoint = char.codePointAt(0) as number;
    if (inRanges(codePoint, NON_ASCII_SPACE)) mapped += ' ';
    else if (!inRanges(codePoint, MAPPED_TO_NOTHING)) mapped += char;
  }
  const prepared = mapped.normalize('NFKC');
  if (prepared.length === 0) return password;
  for (const char of prepared) {
    const codePoint = char.codePointAt(0) as number;
    if (inRanges(codePoint, PROHIBITED) || isNonCharacter(codePoint)) return password;
  }
  return prepared;
}
