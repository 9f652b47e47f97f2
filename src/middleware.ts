/**
 * `withSessions` and `getSession`: Django's `SessionMiddleware` around a
 * fetch handler.
 *
 * @module
 */

import { deletionCookie, readCookie, sessionCookie, varyWithCookie } from "./cookie.ts";
import { SessionInterruptedError, SessionStoreError } from "./errors.ts";
import { type ResolvedOptions, resolveOptions, type SessionOptions } from "./options.ts";
import type { SessionData } from "./serializer.ts";
import { Session } from "./session.ts";

interface RequestState {
  readonly request: Request;
  readonly options: ResolvedOptions;
  // undefined: not read yet; null: the request has no session cookie.
  cookie: string | null | undefined;
  session: Promise<Session> | undefined;
}

const states = new WeakMap<Request, RequestState>();

// Browsers drop a cookie whose name, value and attributes pass 4096 bytes
// (RFC 6265 section 6.1) without a word; the session would silently vanish.
const MAX_COOKIE_BYTES = 4096;

class CookieTooLargeError extends Error {
  constructor(size: number) {
    super(
      `Cannot set the session cookie as it would be ${size} bytes, over the ${MAX_COOKIE_BYTES}-byte limit of browsers: keep less in the session, or use a server-side engine such as FileStore`,
    );
    this.name = "CookieTooLargeError";
  }
}

/**
 * Wraps a fetch handler so that `getSession(req)` works inside it. The
 * returned function takes the same arguments, so it can be given to
 * `Deno.serve(...)` and to `Bun.serve({ fetch })`.
 *
 * Nothing is read from the store until the handler calls `getSession`, and
 * a request that never does costs no I/O. After the handler, a modified,
 * non-empty session is saved and its cookie set, unless the response is a
 * 5xx; a session emptied by `flush()` has its cookie deleted; `Vary: Cookie`
 * is added whenever the session was read. A store failure is logged and
 * answered with 500, a session deleted by a concurrent request with 400.
 *
 * @param handler The fetch handler to wrap.
 * @param options Django's `SESSION_*` settings; see {@link SessionOptions}.
 * @returns The wrapped handler.
 * @throws {TypeError | RangeError} right away when an option is invalid.
 * @example A visit counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, withSessions } from "@tessera/sessions";
 *
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<{ visits: number }>(req);
 *   const visits = (session.get("visits") ?? 0) + 1;
 *   session.set("visits", visits);
 *   return new Response(`visit ${visits}`);
 * }, { store: new MemoryStore() });
 *
 * const first = await handler(new Request("http://localhost/"));
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
 * assert.equal(await second.text(), "visit 2");
 * assert.equal(second.headers.get("vary"), "Cookie");
 * ```
 */
export function withSessions<A extends unknown[]>(
  handler: (req: Request, ...rest: A) => Response | Promise<Response>,
  options: SessionOptions = {},
): (req: Request, ...rest: A) => Promise<Response> {
  const resolved = resolveOptions(options);
  return async function handleWithSessions(req: Request, ...rest: A): Promise<Response> {
    const state: RequestState = {
      request: req,
      options: resolved,
      cookie: undefined,
      session: undefined,
    };
    states.set(req, state);
    try {
      const response = await handler(req, ...rest);
      return await finish(state, response);
    } catch (error) {
      const answer = answerSessionError(error, resolved);
      if (answer === null) throw error;
      return answer;
    }
  };
}

/**
 * The session of a request that a {@link withSessions} handler is handling.
 * The store is read on the first call for a request; later calls return the
 * same session. Pass the `Request` object the handler received.
 *
 * @returns The loaded session; `T` types its data.
 * @throws {Error} when `req` is not being handled inside `withSessions`.
 * @example Log in and out
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, withSessions } from "@tessera/sessions";
 *
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<{ user: string }>(req);
 *   if (new URL(req.url).pathname === "/login") {
 *     await session.cycleKey();
 *     session.set("user", "ada");
 *   } else {
 *     await session.flush();
 *   }
 *   return new Response("ok");
 * }, { store: new MemoryStore() });
 *
 * const login = await handler(new Request("http://localhost/login"));
 * const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
 * const logout = await handler(new Request("http://localhost/logout", { headers: { cookie } }));
 * assert.match(logout.headers.get("set-cookie")!, /^sessionid=; Expires=Thu, 01 Jan 1970/);
 * ```
 */
export function getSession<T extends object = SessionData>(req: Request): Promise<Session<T>> {
  const state = states.get(req);
  if (state === undefined) {
    throw new Error(
      "Cannot get the session as this request is not being handled inside withSessions(): wrap the fetch handler with withSessions(handler) and pass getSession() the Request it received",
    );
  }
  state.session ??= openSession(state, requestKey(state));
  return state.session as unknown as Promise<Session<T>>;
}

function requestKey(state: RequestState): string | null {
  if (state.cookie === undefined) {
    state.cookie = readCookie(state.request.headers.get("cookie"), state.options.cookieName) ??
      null;
  }
  return state.cookie;
}

async function openSession(state: RequestState, key: string | null): Promise<Session> {
  const session = new Session(key, state.options);
  await session.load();
  return session;
}

async function finish(state: RequestState, response: Response): Promise<Response> {
  const options = state.options;
  let session: Session;
  if (state.session !== undefined) {
    try {
      session = await state.session;
    } catch (error) {
      // The handler saw the failure and already answered with an error.
      if (response.status >= 500) return response;
      throw error;
    }
  } else if (options.saveEveryRequest && requestKey(state) !== null) {
    // Sliding expiry for a session the handler never touched: load it, so
    // that an unknown key is dropped instead of saved (CVE-2015-5143).
    session = await openSession(state, state.cookie!);
  } else {
    return response;
  }

  const empty = session.isEmpty();
  let setCookie: string | null = null;
  let vary = session.accessed;
  if (state.cookie !== null && empty) {
    setCookie = deletionCookie(options.cookieName, options.cookieAttributes);
    vary = true;
  } else if ((session.modified || options.saveEveryRequest) && !empty && response.status < 500) {
    const maxAge = session.getExpireAtBrowserClose() ? null : session.getExpiryAge();
    await session.save();
    setCookie = sessionCookie(
      options.cookieName,
      session.sessionKey!,
      maxAge,
      options.cookieAttributes,
    );
    if (setCookie.length > MAX_COOKIE_BYTES) throw new CookieTooLargeError(setCookie.length);
  }
  if (setCookie === null && !vary) return response;
  return withHeaders(response, (headers) => {
    if (setCookie !== null) headers.append("Set-Cookie", setCookie);
    if (vary) headers.set("Vary", varyWithCookie(headers.get("Vary")));
  });
}

// Responses from Response.redirect(), Response.error() and fetch() have
// immutable headers; such a response is copied so that it still gets its
// cookie.
function withHeaders(response: Response, change: (headers: Headers) => void): Response {
  try {
    change(response.headers);
    return response;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  const copy = new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  change(copy.headers);
  return copy;
}

function answerSessionError(error: unknown, options: ResolvedOptions): Response | null {
  if (error instanceof SessionInterruptedError) return plainText(400, error.message);
  if (error instanceof CookieTooLargeError) {
    options.logger.error(error.message);
    return plainText(500, "Internal Server Error");
  }
  if (error instanceof SessionStoreError) {
    options.logger.error(`${error.message}: the session store failed`, error.cause);
    return plainText(500, "Internal Server Error");
  }
  return null;
}

function plainText(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}
