/**
 * Sessions for Oak: `app.use(sessions(options))`, then
 * `await ctx.state.getSession()` in a later middleware or route.
 *
 * The same engines, options and Django rules as {@link withSessions}, from
 * the same core: nothing is read from the store until a handler calls
 * `getSession()`; after the handler a changed session is saved and its
 * cookie set unless the response is a 5xx, `flush()` deletes the cookie,
 * and `Vary: Cookie` goes on every response that read the session or sets
 * its cookie. An error thrown with `ctx.throw()` keeps going to Oak's own
 * error handling, which answers with its status; the session follows that
 * status and its headers travel with the error.
 *
 * @example A visit counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { Application } from "@oakserver/oak";
 * import { MemoryStore } from "@tessera/sessions";
 * import { type SessionState, sessions } from "@tessera/sessions/oak";
 *
 * const app = new Application<SessionState<{ visits: number }>>();
 * app.use(sessions({ store: new MemoryStore() }));
 * app.use(async (ctx) => {
 *   const session = await ctx.state.getSession();
 *   const visits = (session.get("visits") ?? 0) + 1;
 *   session.set("visits", visits);
 *   ctx.response.body = `visit ${visits}`;
 * });
 *
 * // npm's Oak 14 types app.handle() with undici's Request; it takes the runtime's.
 * const handle = (req: Request) => app.handle(req as unknown as Parameters<typeof app.handle>[0]);
 * const first = (await handle(new Request("http://localhost/")))!;
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = (await handle(new Request("http://localhost/", { headers: { cookie } })))!;
 * assert.equal(await second.text(), "visit 2");
 * ```
 *
 * @see {@link https://oakserver.org/middleware}
 * @module
 */

import type { Context, Middleware } from "@oakserver/oak";
import {
  addHeaders,
  type HeaderTarget,
  SessionExchange,
  type SessionFailure,
} from "../_exchange.ts";
import { resolveOptions, type SessionOptions } from "../options.ts";
import type { SessionData } from "../serializer.ts";
import type { Session } from "../session.ts";

/** What {@link sessions} puts in Oak's `ctx.state`. */
export interface SessionState<T extends object = SessionData> {
  /** The request's session, read from the store on the first call only. */
  getSession: () => Promise<Session<T>>;
}

/**
 * Oak middleware that gives every middleware after it
 * `ctx.state.getSession()`, typed by `T` through the application's state.
 *
 * @param options Django's `SESSION_*` settings, as for `withSessions`.
 * @returns The middleware, for `app.use(...)`.
 * @throws {TypeError | RangeError} right away when an option is invalid.
 * @example Log in with a new key
 * ```ts
 * import assert from "node:assert/strict";
 * import { Application } from "@oakserver/oak";
 * import { MemoryStore } from "@tessera/sessions";
 * import { sessions } from "@tessera/sessions/oak";
 *
 * const app = new Application();
 * app.use(sessions<{ user: string }>({ store: new MemoryStore() }));
 * app.use(async (ctx) => {
 *   const session = await ctx.state.getSession();
 *   await session.cycleKey();
 *   session.set("user", "ada");
 *   ctx.response.body = "in";
 * });
 *
 * // npm's Oak 14 types app.handle() with undici's Request; it takes the runtime's.
 * const handle = (req: Request) => app.handle(req as unknown as Parameters<typeof app.handle>[0]);
 * const login = (await handle(new Request("http://localhost/login")))!;
 * assert.match(login.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
 * ```
 */
export function sessions<T extends object = SessionData>(
  options: SessionOptions = {},
): Middleware<SessionState<T>> {
  const resolved = resolveOptions(options);
  return async function tesseraSessions(ctx, next): Promise<void> {
    const exchange = new SessionExchange(resolved, ctx.request.headers.get("cookie"));
    ctx.state.getSession = exchange.session.bind(exchange) as () => Promise<Session<T>>;
    try {
      await next();
    } catch (error) {
      await finishThrown(ctx, exchange, error);
      return;
    }
    // ctx.upgrade() sets respond to false: the connection is a WebSocket now.
    if (ctx.respond === false) {
      await exchange.finishUpgrade();
      return;
    }
    const headers = ctx.response.headers;
    const outcome = await exchange.finish(ctx.response.status, headers.get("Vary"));
    if (outcome.failure !== null) respond(ctx, outcome.failure);
    else addHeaders(headers, outcome);
  };
}

// The session of a request whose handler threw: answered here when the
// error is the session's, otherwise finished for the status Oak will give
// the error, which is then thrown on.
async function finishThrown(
  ctx: Context,
  exchange: SessionExchange,
  error: unknown,
): Promise<void> {
  const failure = exchange.answerError(error);
  if (failure !== null) return respond(ctx, failure);
  const outcome = await exchange.finish(statusOf(error), ctx.response.headers.get("Vary"));
  if (outcome.failure !== null) return respond(ctx, outcome.failure);
  if (outcome.vary !== null) {
    // An error handler of the application's own keeps ctx.response's
    // headers; Oak's default one drops them for the error's `headers`.
    addHeaders(ctx.response.headers, outcome);
    if (typeof error === "object" && error !== null) addHeaders(headersOf(ctx, error), outcome);
  }
  throw error;
}

// The status Oak answers an error with: its `status` when it has one (an
// HttpError from ctx.throw()), else 500.
function statusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : 500;
}

// The error's `headers`, given it when it has none. Oak 14 from npm takes
// them only as an instance of its own Headers class (undici's), hence the
// constructor of the response's headers.
function headersOf(ctx: Context, error: object): HeaderTarget {
  const existing = (error as { headers?: unknown }).headers;
  if (existing instanceof ctx.response.headers.constructor) return existing as HeaderTarget;
  const HeadersClass = ctx.response.headers.constructor as new () => HeaderTarget;
  const headers = new HeadersClass();
  Object.defineProperty(error, "headers", { value: headers, configurable: true });
  return headers;
}

function respond(ctx: Context, failure: SessionFailure): void {
  ctx.response.status = failure.status;
  ctx.response.type = "text/plain; charset=utf-8";
  ctx.response.body = failure.body;
}
