// Django's base62 (django.utils.baseconv.base62, signing.b62_encode in newer
// releases): the alphabet of the timestamps in signed values.

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS = /^-?[0-9A-Za-z]+$/;

/** `n` (a safe integer, negative allowed) in base62, as Django writes it. */
export function encodeBase62(n: number): string {
  if (!Number.isSafeInteger(n)) throw new RangeError(`Cannot encode ${n} in base62`);
  if (n === 0) return "0";
  let rest = Math.abs(n);
  let text = "";
  while (rest > 0) {
    text = ALPHABET.charAt(rest % 62) + text;
    rest = Math.floor(rest / 62);
  }
  return n < 0 ? `-${text}` : text;
}

/**
 * The number a base62 text stands for, or `null` when the text is not base62
 * or stands for a number past `Number.MAX_SAFE_INTEGER`.
 */
export function decodeBase62(text: string): number | null {
  if (!DIGITS.test(text)) return null;
  const negative = text.charCodeAt(0) === 45; // "-"
  let n = 0;
  for (let i = negative ? 1 : 0; i < text.length; i++) {
    n = n * 62 + digitValue(text.charCodeAt(i));
    if (n > Number.MAX_SAFE_INTEGER) return null;
  }
  return negative ? -n : n;
}

function digitValue(code: number): number {
  if (code <= 57) return code - 48; // 0-9
  if (code <= 90) return code - 55; // A-Z
  return code - 61; // a-z
}
