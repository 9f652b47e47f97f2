/**
 * Sessions for Elysia: `app.use(sessions(options))`, then
 * `await getSession()` from the handler's context, a value Elysia derives
 * for every request.
 *
 * The same engines, options and Django rules as {@link withSessions}, from
 * the same core: nothing is read from the store until a handler calls
 * `getSession()`; after the handler a changed session is saved and its
 * cookie set unless the response is a 5xx, `flush()` deletes the cookie,
 * and `Vary: Cookie` goes on every response that read the session or sets
 * its cookie. A `status(...)` the handler returns or throws, and any other
 * error Elysia answers, follows the same rules by its status.
 *
 * @example A visit counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { Elysia } from "elysia";
 * import { MemoryStore } from "@tessera/sessions";
 * import { sessions } from "@tessera/sessions/elysia";
 *
 * const app = new Elysia()
 *   .use(sessions<{ visits: number }>({ store: new MemoryStore() }))
 *   .get("/", async ({ getSession }) => {
 *     const session = await getSession();
 *     const visits = (session.get("visits") ?? 0) + 1;
 *     session.set("visits", visits);
 *     return `visit ${visits}`;
 *   });
 *
 * const first = await app.handle(new Request("http://localhost/"));
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = await app.handle(new Request("http://localhost/", { headers: { cookie } }));
 * assert.equal(await second.text(), "visit 2");
 * ```
 *
 * @see {@link https://elysiajs.com/essential/plugin}
 * @module
 */

import { Elysia, ElysiaCustomStatusResponse, serializeCookie, StatusMap } from "elysia";
import {
  applyOutcome,
  failureResponse,
  SessionExchange,
  type SessionOutcome,
} from "../_exchange.ts";
import { resolveOptions, type SessionOptions } from "../options.ts";
import type { SessionData } from "../serializer.ts";
import type { Session } from "../session.ts";

// A type, not an interface: Elysia's derive takes only a record type.
/** What {@link sessions} derives into every handler's context. */
export type SessionContext<T extends object = SessionData> = {
  /** The request's session, read from the store on the first call only. */
  readonly getSession: () => Promise<Session<T>>;
};

// Elysia's defaults for a plugin's type parameters are `{}`, and it
// compares them invariantly: the same `{}` it is.
// deno-lint-ignore ban-types
type Empty = {};

/** The Elysia plugin {@link sessions} returns: it derives {@link SessionContext}. */
export type SessionPlugin<T extends object = SessionData> = Elysia<
  "",
  { decorator: Empty; store: Empty; derive: Empty; resolve: Empty },
  { typebox: Empty; error: Empty },
  {
    schema: Empty;
    standaloneSchema: Empty;
    macro: Empty;
    macroFn: Empty;
    parser: Empty;
    response: Empty;
  },
  Empty,
  {
    derive: SessionContext<T>;
    resolve: Empty;
    schema: Empty;
    standaloneSchema: Empty;
    response: Empty;
  }
>;

// What Elysia's `set` holds, as far as the session uses it.
interface ElysiaSet {
  status?: number | string;
  cookie?: Parameters<typeof serializeCookie>[0];
  headers: Record<string, string | number | string[] | undefined>;
}

/**
 * An Elysia plugin that derives `getSession()` into the context of every
 * handler of the app that uses it, typed by `T`.
 *
 * @param options Django's `SESSION_*` settings, as for `withSessions`.
 * @returns The plugin, for `app.use(...)`.
 * @throws {TypeError | RangeError} right away when an option is invalid.
 * @example Log in with a new key
 * ```ts
 * import assert from "node:assert/strict";
 * import { Elysia } from "elysia";
 * import { MemoryStore } from "@tessera/sessions";
 * import { sessions } from "@tessera/sessions/elysia";
 *
 * const app = new Elysia()
 *   .use(sessions<{ user: string }>({ store: new MemoryStore() }))
 *   .post("/login", async ({ getSession }) => {
 *     const session = await getSession();
 *     await session.cycleKey();
 *     session.set("user", "ada");
 *     return "in";
 *   });
 *
 * const login = await app.handle(new Request("http://localhost/login", { method: "POST" }));
 * assert.match(login.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
 * ```
 */
export function sessions<T extends object = SessionData>(
  options: SessionOptions = {},
): SessionPlugin<T> {
  const resolved = resolveOptions(options);
  // The hooks after the handler get the request, not what derive returned.
  const exchanges = new WeakMap<Request, SessionExchange>();
  return new Elysia()
    .derive({ as: "scoped" }, function deriveSession({ request }): SessionContext<T> {
      const exchange = new SessionExchange(resolved, request.headers.get("cookie"));
      exchanges.set(request, exchange);
      return { getSession: exchange.session.bind(exchange) as () => Promise<Session<T>> };
    })
    .onAfterHandle({ as: "scoped" }, async function finishSession({ request, response, set }) {
      const exchange = exchanges.get(request);
      if (exchange === undefined) return;
      if (response instanceof Response) {
        return applyOutcome(
          response,
          await exchange.finish(response.status, response.headers.get("Vary")),
        );
      }
      return await finishSet(exchange, statusOf(response, set), set);
    })
    .onError({ as: "scoped" }, async function finishSessionOnError({ request, error, set }) {
      const exchange = exchanges.get(request);
      if (exchange === undefined) return;
      const failure = exchange.answerError(error);
      if (failure !== null) return failureResponse(failure);
      return await finishSet(exchange, statusOfError(error), set);
    }) as unknown as SessionPlugin<T>;
}

// Finishes the session for a response Elysia has yet to build from `set`;
// a failure comes back as the response to answer with instead.
async function finishSet(
  exchange: SessionExchange,
  status: number,
  set: ElysiaSet,
): Promise<Response | undefined> {
  const headers = set.headers;
  const varyName = "Vary" in headers ? "Vary" : "vary";
  const vary = headers[varyName];
  const outcome: SessionOutcome = await exchange.finish(
    status,
    vary === undefined ? null : String(vary),
  );
  if (outcome.failure !== null) return failureResponse(outcome.failure);
  if (outcome.setCookie !== null) {
    // A list, which Elysia sends as one Set-Cookie line each. Elysia would
    // replace it with the cookies of its own jar: those join the list now.
    const lines = [headers["set-cookie"], serializeCookie(set.cookie)]
      .flat()
      .filter((line) => line !== undefined)
      .map(String);
    if (set.cookie !== undefined) {
      for (const name of Object.keys(set.cookie)) delete set.cookie[name];
    }
    headers["set-cookie"] = [...lines, outcome.setCookie];
  }
  if (outcome.vary !== null) headers[varyName] = outcome.vary;
  return undefined;
}

// The status of a response Elysia will build: a status(...) the handler
// returned carries its own code, otherwise `set.status` (a number or a name
// such as "Unauthorized") has it.
function statusOf(response: unknown, set: ElysiaSet): number {
  if (response instanceof ElysiaCustomStatusResponse) return response.code;
  const status = set.status;
  if (typeof status === "number") return status;
  if (typeof status === "string") return (StatusMap as Record<string, number>)[status] ?? 200;
  return 200;
}

// The status Elysia answers an error with: a thrown status(...) carries its
// code, its own errors (NotFoundError, ValidationError...) a status, and
// anything else is a 500.
function statusOfError(error: unknown): number {
  if (error instanceof ElysiaCustomStatusResponse) return error.code;
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : 500;
}
