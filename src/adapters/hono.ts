/**
 * Sessions for Hono: `app.use(sessions(options))`, then
 * `await c.var.getSession()` in a handler.
 *
 * The same engines, options and Django rules as {@link withSessions}, from
 * the same core: nothing is read from the store until a handler calls
 * `getSession()`; after the handler a changed session is saved and its
 * cookie set unless the response is a 5xx, `flush()` deletes the cookie,
 * and `Vary: Cookie` goes on every response that read the session or sets
 * its cookie. An `HTTPException` is answered by Hono first and its response
 * then follows the same rules as any other.
 *
 * @example A visit counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { MemoryStore } from "@tessera/sessions";
 * import { sessions } from "@tessera/sessions/hono";
 *
 * const app = new Hono().use(sessions<{ visits: number }>({ store: new MemoryStore() }));
 * app.get("/", async (c) => {
 *   const session = await c.var.getSession();
 *   const visits = (session.get("visits") ?? 0) + 1;
 *   session.set("visits", visits);
 *   return c.text(`visit ${visits}`);
 * });
 *
 * const first = await app.request("/");
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = await app.request("/", { headers: { cookie } });
 * assert.equal(await second.text(), "visit 2");
 * ```
 *
 * @see {@link https://hono.dev/docs/guides/middleware}
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { applyOutcome, failureResponse, SessionExchange } from "../_exchange.ts";
import { resolveOptions, type SessionOptions } from "../options.ts";
import type { SessionData } from "../serializer.ts";
import type { Session } from "../session.ts";

/** What {@link sessions} puts in Hono's `c.var`. */
export interface SessionVariables<T extends object = SessionData> {
  /** The request's session, read from the store on the first call only. */
  getSession: () => Promise<Session<T>>;
}

/**
 * Hono middleware that gives every handler after it
 * `c.var.getSession()`, typed by `T` through Hono's `Variables`.
 *
 * @param options Django's `SESSION_*` settings, as for `withSessions`.
 * @returns The middleware, for `app.use(...)`.
 * @throws {TypeError | RangeError} right away when an option is invalid.
 * @example Log in with a new key, log out
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { MemoryStore } from "@tessera/sessions";
 * import { sessions } from "@tessera/sessions/hono";
 *
 * const app = new Hono().use(sessions<{ user: string }>({ store: new MemoryStore() }));
 * app.post("/login", async (c) => {
 *   const session = await c.var.getSession();
 *   await session.cycleKey();
 *   session.set("user", "ada");
 *   return c.text("in");
 * });
 * app.post("/logout", async (c) => {
 *   await (await c.var.getSession()).flush();
 *   return c.text("out");
 * });
 *
 * const login = await app.request("/login", { method: "POST" });
 * const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
 * const logout = await app.request("/logout", { method: "POST", headers: { cookie } });
 * assert.match(logout.headers.get("set-cookie")!, /^sessionid=; Expires=Thu, 01 Jan 1970/);
 * ```
 */
export function sessions<T extends object = SessionData>(
  options: SessionOptions = {},
): MiddlewareHandler<{ Variables: SessionVariables<T> }> {
  const resolved = resolveOptions(options);
  return async function tesseraSessions(c, next): Promise<void> {
    const exchange = new SessionExchange(resolved, c.req.raw.headers.get("cookie"));
    c.set("getSession", exchange.session.bind(exchange) as () => Promise<Session<T>>);
    await next();
    // Hono has already turned a thrown error into c.res; one of the
    // session's own gets the answer withSessions gives it.
    const failure = c.error === undefined ? null : exchange.answerError(c.error);
    if (failure !== null) {
      // Unset first, or Hono's setter would copy the failed response's
      // headers into the answer.
      c.res = undefined;
      c.res = failureResponse(failure);
      return;
    }
    const response = c.res;
    const outcome = await exchange.finish(response.status, response.headers.get("Vary"));
    const answer = applyOutcome(response, outcome);
    // Hono's setter copies the old response's headers into the new one:
    // assign only a response that is really new.
    if (answer !== response) c.res = answer;
  };
}
