/**
 * `withSessions` and `getSession`: Django's `SessionMiddleware` around a
 * fetch handler.
 *
 * @module
 */

import { applyOutcome, failureResponse, SessionExchange } from "./_exchange.ts";
import { resolveOptions, type SessionOptions } from "./options.ts";
import type { SessionData } from "./serializer.ts";
import type { Session } from "./session.ts";

// Each request's exchange rides on the Request itself, under a symbol no one
// else holds: on Deno a WeakMap entry per request cost about 2.7 us and a
// share of the garbage collector's time (bench/README.md). A Request that
// cannot take a property (a frozen one) falls back to the WeakMap.
const EXCHANGE: unique symbol = Symbol("tessera.exchange");
const fallback = new WeakMap<Request, SessionExchange>();

function attach(req: Request, exchange: SessionExchange): void {
  try {
    // configurable: a nested withSessions replaces it for its own handler.
    Object.defineProperty(req, EXCHANGE, { value: exchange, configurable: true });
  } catch {
    fallback.set(req, exchange);
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
    const exchange = new SessionExchange(resolved, req.headers.get("cookie"));
    attach(req, exchange);
    let response: R;
    try {
      response = await handler(req, ...rest);
    } catch (error) {
      const failure = exchange.answerError(error);
      if (failure === null) throw error;
      return failureResponse(failure) as R;
    }
    // Nothing (Bun's upgrade): the response is no longer ours.
    if (!(response instanceof Response)) {
      await exchange.finishUpgrade();
      return response;
    }
    const outcome = await exchange.finish(response.status, response.headers.get("Vary"));
    return applyOutcome(response, outcome) as R;
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
  return await exchangeOf(req, "get the session cookie").cookieHeader();
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
  return exchangeOf(req, "get the session").session() as unknown as Promise<Session<T>>;
}

function exchangeOf(req: Request, action: string): SessionExchange {
  const exchange = (req as { [EXCHANGE]?: SessionExchange })[EXCHANGE] ?? fallback.get(req);
  if (exchange === undefined) {
    throw new Error(
      `Cannot ${action} as this request is not being handled inside withSessions(): wrap the fetch handler with withSessions(handler) and pass the Request it received`,
    );
  }
  return exchange;
}
