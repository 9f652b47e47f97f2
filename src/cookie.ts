// Reading the session cookie and writing Set-Cookie and Vary (RFC 6265).

/** The attributes every session cookie of one `withSessions` carries. */
export interface CookieAttributes {
  domain: string | undefined;
  path: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: "Lax" | "Strict" | "None" | false;
  /** `Partitioned` (CHIPS); absent means false. */
  partitioned?: boolean;
}

const EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT";
const LAST_HTTP_DATE = Date.UTC(9999, 11, 31, 23, 59, 59);

/**
 * The value of the first cookie called `name` in a `Cookie` header, with
 * surrounding double quotes removed, or `undefined` when there is none.
 *
 * The first one wins: browsers list the cookie with the most specific path
 * first (RFC 6265 section 5.4), and jshttp/cookie and std do the same.
 */
export function readCookie(header: string | null, name: string): string | undefined {
  if (header === null || !header.includes(name)) return undefined;
  const length = header.length;
  // The first "=" at or after `start`. Searching for it afresh in every
  // segment would rescan the rest of the header each time, quadratic in a
  // header of "x;x;x;..."; found once, it serves every segment up to it,
  // and the segments before the one that holds it are skipped unread, as
  // none of them is a pair.
  let equals = -1;
  let start = 0;
  while (start < length) {
    if (equals < start) {
      equals = header.indexOf("=", start);
      if (equals === -1) return undefined;
    }
    let end = header.indexOf(";", start);
    if (end === -1) end = length;
    if (equals > end) {
      start = header.lastIndexOf(";", equals) + 1;
      continue;
    }
    if (equals - start >= name.length && header.slice(start, equals).trim() === name) {
      const value = header.slice(equals + 1, end).trim();
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
        ? value.slice(1, -1)
        : value;
    }
    start = end + 1;
  }
  return undefined;
}

/** The attribute part shared by every Set-Cookie of one configuration. */
export function formatAttributes(attributes: CookieAttributes): string {
  let text = "";
  if (attributes.domain !== undefined) text += `; Domain=${attributes.domain}`;
  text += `; Path=${attributes.path}`;
  if (attributes.secure) text += "; Secure";
  if (attributes.httpOnly) text += "; HttpOnly";
  if (attributes.sameSite !== false) text += `; SameSite=${attributes.sameSite}`;
  if (attributes.partitioned === true) text += "; Partitioned";
  return text;
}

/**
 * A Set-Cookie value for the session. `maxAge` null means a browser-session
 * cookie (no `Max-Age`, no `Expires`); a negative age is sent as 0, one
 * that would end after the year 9999 as the age that ends with it.
 */
export function sessionCookie(
  name: string,
  value: string,
  maxAge: number | null,
  attributes: string,
): string {
  if (maxAge === null) return `${name}=${value}${attributes}`;
  const now = Date.now();
  // Browsers read only four-digit years (RFC 6265 section 5.1.1); a longer
  // age, which only a huge setExpiry() or a tampered session can ask for,
  // would give "Expires=Invalid Date" or a year past 9999.
  const longest = Math.floor((LAST_HTTP_DATE - now) / 1000);
  const seconds = Math.max(0, Math.min(Math.floor(maxAge), longest));
  const expires = new Date(now + seconds * 1000).toUTCString();
  return `${name}=${value}; Expires=${expires}; Max-Age=${seconds}${attributes}`;
}

/**
 * A Set-Cookie value that deletes the session cookie. It repeats the path,
 * domain and SameSite of the cookie it deletes, or the browser keeps it.
 */
export function deletionCookie(name: string, attributes: string): string {
  return `${name}=; Expires=${EPOCH}; Max-Age=0${attributes}`;
}

const VARY_COOKIE = /(?:^|,)\s*(?:cookie|\*)\s*(?:,|$)/i;

/** Adds `Cookie` to a Vary header value unless it is already covered. */
export function varyWithCookie(vary: string | null): string {
  if (vary === null || vary.trim() === "") return "Cookie";
  return VARY_COOKIE.test(vary) ? vary : `${vary}, Cookie`;
}
