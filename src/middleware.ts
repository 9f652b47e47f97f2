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
  // The Set-Cookie value of a save made before the response existed
  // (sessionCookieHeader); null while there is none.
  committed: string | null;
}

const states = new WeakMap<Request, RequestState>();

// Browsers drop a cookie whose name, value and attributes pass 4096 bytes
// (RFC 6265 section 6.1) without a word; the session would silently vanish.
const MAX_COOKIE_BYTES = 4096;

// The status of a WebSocket upgrade response (Deno.upgradeWebSocket): the
// connection stops being HTTP once it is sent.
const SWITCHING_PROTOCOLS = 101;

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
 * `Deno.serve(...)` and to `Bun.serve({ fetch })`; a handler that always
 * returns a `Response` keeps the type `Deno.serve` expects.
 *
 * Nothing is read from the store until the handler calls `getSession`, and
 * a request that never does costs no I/O. After the handler, a modified,
 * non-empty session is saved and its cookie set, unless the response is a
 * 5xx; a session emptied by `flush()` has its cookie deleted; `Vary: Cookie`
 * is added whenever the session was read or the cookie is set or deleted.
 * A store failure, or any other failure after the handler, is logged and
 * answered with 500, a session deleted by a concurrent request with 400.
 *
 * What a handler returns after a WebSocket upgrade passes through untouched:
 * no `Response` at all (Bun's `if (server.upgrade(req)) return;`), or the
 * 101 response of `Deno.upgradeWebSocket`. The session is still saved if it
 * was changed, but the client can get a new session's cookie only with the
 * upgrade response: send {@link sessionCookieHeader}'s value with it. After
 * an upgrade a failed save can only be logged. `Response.error()` passes
 * through untouched as well, and saves nothing, as a 5xx would not.
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
export function withSessions<A extends unknown[], R extends Response | undefined = Response>(
  handler: (req: Request, ...rest: A) => R | Promise<R>,
  options: SessionOptions = {},
): (req: Request, ...rest: A) => Promise<R> {
  const resolved = resolveOptions(options);
  return async function handleWithSessions(req: Request, ...rest: A): Promise<R> {
    const state: RequestState = {
      request: req,
      options: resolved,
      cookie: undefined,
      session: undefined,
      committed: null,
    };
    states.set(req, state);
    let response: R;
    try {
      response = await handler(req, ...rest);
    } catch (error) {
      const answer = answerSessionError(error, resolved);
      if (answer === null) throw error;
      return answer as R;
    }
    // Nothing (Bun's upgrade) or a 101 (Deno's): the response is no longer ours.
    if (!(response instanceof Response) || response.status === SWITCHING_PROTOCOLS) {
      await finishUpgrade(state);
      return response;
    }
    // Response.error(): the client gets a network error and no headers.
    if (response.status === 0) return response;
    try {
      return await finish(state, response) as R;
    } catch (error) {
      if (error instanceof SessionInterruptedError) return plainText(400, error.message) as R;
      logFailure(error, resolved);
      return plainText(500, "Internal Server Error") as R;
    }
  };
}

/**
 * Saves the session of a request being handled now, as the middleware would
 * after the handler, and returns the `Set-Cookie` value the response must
 * carry for it, or `null` when it needs none. Call it just before a
 * WebSocket upgrade, whose response is the only one the client gets: pass
 * the value in `server.upgrade(req, { headers })` on Bun, or append it to
 * the headers of `Deno.upgradeWebSocket(req).response` on Deno.
 *
 * A session that was not changed gets `null` (its cookie is already in the
 * browser), unless `saveEveryRequest` is on; a session emptied by `flush()`
 * gets the header that deletes the cookie. Changes made after the call are
 * saved after the handler too, under the same key. When the handler returns
 * a normal response instead, that response gets the cookie as usual.
 *
 * @param req The `Request` the handler received.
 * @returns The `Set-Cookie` header value, or `null`.
 * @throws {Error} when `req` is not being handled inside `withSessions`.
 * @throws {SessionStoreError} when the store fails.
 * @throws {TypeError} when the data no longer fits JSON (see `Session.set`).
 * @example The cookie of a new session, for an upgrade response
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, sessionCookieHeader, withSessions } from "@tessera/sessions";
 *
 * const store = new MemoryStore();
 * let upgradeHeaders: Record<string, string> = {};
 * const handler = withSessions(async (req) => {
 *   (await getSession(req)).set("socket", "open");
 *   const setCookie = await sessionCookieHeader(req);
 *   if (setCookie !== null) upgradeHeaders = { "Set-Cookie": setCookie };
 *   // On Bun: if (server.upgrade(req, { headers: upgradeHeaders })) return;
 *   return undefined;
 * }, { store });
 *
 * assert.equal(await handler(new Request("http://localhost/socket")), undefined);
 * assert.match(upgradeHeaders["Set-Cookie"]!, /^sessionid=[a-z0-9]{32}; /);
 * assert.equal(store.size, 1);
 * ```
 */
export async function sessionCookieHeader(req: Request): Promise<string | null> {
  const state = stateOf(req, "get the session cookie");
  state.session ??= openSession(state, requestKey(state));
  const session = await state.session;
  if (session.isEmpty()) {
    return state.cookie === null
      ? null
      : deletionCookie(state.options.cookieName, state.options.cookieAttributes);
  }
  return await commit(state, session);
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
  const state = stateOf(req, "get the session");
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

function stateOf(req: Request, action: string): RequestState {
  const state = states.get(req);
  if (state === undefined) {
    throw new Error(
      `Cannot ${action} as this request is not being handled inside withSessions(): wrap the fetch handler with withSessions(handler) and pass the Request it received`,
    );
  }
  return state;
}

// The session the step after the handler deals with, or null when there is
// none to deal with.
async function sessionToFinish(state: RequestState): Promise<Session | null> {
  if (state.session !== undefined) return await state.session;
  if (state.options.saveEveryRequest && requestKey(state) !== null) {
    // Sliding expiry for a session the handler never touched: load it, so
    // that an unknown key is dropped instead of saved (CVE-2015-5143).
    return await (state.session = openSession(state, state.cookie!));
  }
  return null;
}

// Saves a non-empty session if it changed (or saveEveryRequest asks for it
// and this request has not saved it yet), and returns the Set-Cookie value
// of this request's save, or null when there was none.
async function commit(state: RequestState, session: Session): Promise<string | null> {
  const options = state.options;
  if (!session.modified && !(options.saveEveryRequest && state.committed === null)) {
    return state.committed;
  }
  const maxAge = session.getExpireAtBrowserClose() ? null : session.getExpiryAge();
  await session.save();
  // What is saved is no longer a change: a later save, after the response,
  // is for what changes from now on.
  session.modified = false;
  const setCookie = sessionCookie(
    options.cookieName,
    session.sessionKey!,
    maxAge,
    options.cookieAttributes,
  );
  if (setCookie.length > MAX_COOKIE_BYTES) throw new CookieTooLargeError(setCookie.length);
  return (state.committed = setCookie);
}

async function finish(state: RequestState, response: Response): Promise<Response> {
  const options = state.options;
  let session: Session | null;
  try {
    session = await sessionToFinish(state);
  } catch (error) {
    // The handler saw the failure and already answered with an error.
    if (response.status >= 500) return response;
    throw error;
  }
  if (session === null) return response;

  let setCookie: string | null = null;
  if (session.isEmpty()) {
    if (state.cookie !== null) {
      setCookie = deletionCookie(options.cookieName, options.cookieAttributes);
    }
  } else if (response.status < 500) {
    setCookie = await commit(state, session);
  }
  // A response that sets or deletes the cookie differs per user even when
  // the handler never read the session (saveEveryRequest): a shared cache
  // must not hand it to others (CVE-2026-35192).
  const vary = session.accessed || setCookie !== null;
  if (!vary) return response;
  return withHeaders(response, (headers) => {
    if (setCookie !== null) headers.append("Set-Cookie", setCookie);
    headers.set("Vary", varyWithCookie(headers.get("Vary")));
  });
}

// After an upgrade no header can reach the client any more: a changed
// session is saved under the key the client already holds, and a failure
// can only be logged.
async function finishUpgrade(state: RequestState): Promise<void> {
  const logger = state.options.logger;
  try {
    const session = await sessionToFinish(state);
    if (session === null || session.isEmpty()) return;
    const key = session.sessionKey;
    if (key === null) {
      if (session.modified) {
        logger.warn(
          "Cannot save a new session after a WebSocket upgrade as the client would never get its cookie: send the value of sessionCookieHeader(req) with the upgrade response",
        );
      }
      return;
    }
    const modified = session.modified;
    await commit(state, session);
    // The signed-cookie engine keeps the data in the key: a save made now
    // changes a cookie the client can no longer be sent.
    if (modified && session.sessionKey !== key) {
      logger.warn(
        "Cannot send the session's new cookie after a WebSocket upgrade: changes made after sessionCookieHeader(req) are lost with a session kept in its cookie",
      );
    }
  } catch (error) {
    if (error instanceof SessionInterruptedError) {
      logger.warn(`Cannot save the session after a WebSocket upgrade: ${error.message}`);
    } else {
      logFailure(error, state.options);
    }
  }
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
  if (error instanceof CookieTooLargeError || error instanceof SessionStoreError) {
    logFailure(error, options);
    return plainText(500, "Internal Server Error");
  }
  return null;
}

function logFailure(error: unknown, options: ResolvedOptions): void {
  if (error instanceof SessionStoreError) {
    options.logger.error(`${error.message}: the session store failed`, error.cause);
  } else if (error instanceof CookieTooLargeError) {
    options.logger.error(error.message);
  } else if (error instanceof TypeError || error instanceof RangeError) {
    // A value that no longer fits the serializer: its message names the key.
    options.logger.error(error.message, error);
  } else {
    options.logger.error("Cannot complete the session after the handler as it failed", error);
  }
}

function plainText(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}
