// The framework-neutral core of the session middleware: one request's
// session, from the Cookie header the request carried to the headers its
// response must get. `withSessions` and every framework adapter run the SPEC
// section 4 rules through it, so that none of them is implemented twice.

import { deletionCookie, readCookie, sessionCookie, varyWithCookie } from "./cookie.ts";
import { SessionInterruptedError, SessionStoreError } from "./errors.ts";
import type { ResolvedOptions } from "./options.ts";
import { Session } from "./session.ts";

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

/** A plain-text answer that replaces the handler's response. */
export interface SessionFailure {
  /** 400 for a session deleted by a concurrent request, 500 for a failure. */
  readonly status: 400 | 500;
  readonly body: string;
}

/** What the response needs once the handler is done. */
export interface SessionOutcome {
  /** A `Set-Cookie` value to append, or `null`. */
  readonly setCookie: string | null;
  /** The whole new `Vary` value to set, or `null` to leave `Vary` alone. */
  readonly vary: string | null;
  /** When not `null`, the response is replaced by this answer (logged already). */
  readonly failure: SessionFailure | null;
}

const NOTHING: SessionOutcome = { setCookie: null, vary: null, failure: null };

/** The session of one request, from its Cookie header to the response headers. */
export class SessionExchange {
  readonly options: ResolvedOptions;
  readonly #cookieHeader: string | null;
  // undefined: not read yet; null: the request has no session cookie.
  #cookie: string | null | undefined = undefined;
  #session: Promise<Session> | undefined = undefined;
  // The Set-Cookie value of a save made before the response existed
  // (sessionCookieHeader); null while there is none.
  #committed: string | null = null;

  constructor(options: ResolvedOptions, cookieHeader: string | null) {
    this.options = options;
    this.#cookieHeader = cookieHeader;
  }

  /** The session, read from the store on the first call only. */
  session(): Promise<Session> {
    return this.#session ??= this.#open(this.#key());
  }

  /**
   * Saves the session now, as the step after the handler would, and returns
   * the Set-Cookie value of the response that must carry it, or null.
   */
  async cookieHeader(): Promise<string | null> {
    const session = await this.session();
    if (session.isEmpty()) {
      return this.#cookie === null
        ? null
        : deletionCookie(this.options.cookieName, this.options.cookieAttributes);
    }
    return await this.#commit(session);
  }

  /**
   * The step after the handler, for a response of `status` whose `Vary` is
   * `vary`. Never throws: a failure is logged and comes back as `failure`.
   * A 101 (upgrade) or 0 (`Response.error()`) status gets nothing to add.
   */
  finish(status: number, vary: string | null): SessionOutcome | Promise<SessionOutcome> {
    // The common case, a request that never touched its session, stays
    // synchronous: it costs neither store I/O nor a promise.
    if (
      this.#session === undefined && !this.options.saveEveryRequest &&
      this.options.renewAfter === null
    ) {
      return NOTHING;
    }
    if (status === SWITCHING_PROTOCOLS) return this.finishUpgrade().then(() => NOTHING);
    if (status === 0) return NOTHING;
    return this.#finish(status, vary).catch((error) => ({
      setCookie: null,
      vary: null,
      failure: this.#fail(error),
    }));
  }

  /**
   * The answer to an error the handler threw: a 400 for a session deleted
   * by a concurrent request, a logged 500 for a store or cookie failure,
   * and `null` for an error that is not the session's.
   */
  answerError(error: unknown): SessionFailure | null {
    if (error instanceof SessionInterruptedError) return { status: 400, body: error.message };
    if (error instanceof CookieTooLargeError || error instanceof SessionStoreError) {
      return this.#fail(error);
    }
    return null;
  }

  /**
   * After an upgrade no header can reach the client any more: a changed
   * session is saved under the key the client already holds, and a failure
   * can only be logged.
   */
  async finishUpgrade(): Promise<void> {
    const logger = this.options.logger;
    try {
      const session = await this.#sessionToFinish();
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
      await this.#commit(session);
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
        this.#fail(error);
      }
    }
  }

  #key(): string | null {
    if (this.#cookie === undefined) {
      this.#cookie = readCookie(this.#cookieHeader, this.options.cookieName) ?? null;
    }
    return this.#cookie;
  }

  async #open(key: string | null): Promise<Session> {
    const session = new Session(key, this.options);
    await session.load();
    return session;
  }

  // The session the step after the handler deals with, or null when there
  // is none to deal with.
  async #sessionToFinish(): Promise<Session | null> {
    if (this.#session !== undefined) return await this.#session;
    const options = this.options;
    if ((options.saveEveryRequest || options.renewAfter !== null) && this.#key() !== null) {
      // Sliding expiry for a session the handler never touched: load it, so
      // that an unknown key is dropped instead of saved (CVE-2015-5143);
      // with renewAfter, the load marks it modified when a renewal is due.
      return await (this.#session = this.#open(this.#cookie!));
    }
    return null;
  }

  // Saves a non-empty session if it changed (or saveEveryRequest asks for
  // it and this request has not saved it yet), and returns the Set-Cookie
  // value of this request's save, or null when there was none.
  async #commit(session: Session): Promise<string | null> {
    const options = this.options;
    if (!session.modified && !(options.saveEveryRequest && this.#committed === null)) {
      return this.#committed;
    }
    await session.save();
    let maxAge = session.getExpireAtBrowserClose() ? null : session.getExpiryAge();
    const start = session.getStartDate();
    if (maxAge !== null && start !== null && options.absoluteTimeout !== null) {
      // The cookie ends with the session's whole life, not after it.
      const left = Math.floor(
        (start.getTime() + options.absoluteTimeout * 1000 - Date.now()) / 1000,
      );
      maxAge = Math.max(0, Math.min(maxAge, left));
    }
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
    return (this.#committed = setCookie);
  }

  async #finish(status: number, vary: string | null): Promise<SessionOutcome> {
    let session: Session | null;
    try {
      session = await this.#sessionToFinish();
    } catch (error) {
      // The handler saw the failure and already answered with an error.
      if (status >= 500) return NOTHING;
      throw error;
    }
    if (session === null) return NOTHING;

    let setCookie: string | null = null;
    if (session.isEmpty()) {
      if (this.#cookie !== null) {
        setCookie = deletionCookie(this.options.cookieName, this.options.cookieAttributes);
      }
    } else if (status < 500) {
      setCookie = await this.#commit(session);
    }
    // A response that sets or deletes the cookie differs per user even when
    // the handler never read the session (saveEveryRequest): a shared cache
    // must not hand it to others (CVE-2026-35192).
    if (!session.accessed && setCookie === null) return NOTHING;
    return { setCookie, vary: varyWithCookie(vary), failure: null };
  }

  #fail(error: unknown): SessionFailure {
    if (error instanceof SessionInterruptedError) return { status: 400, body: error.message };
    const logger = this.options.logger;
    if (error instanceof SessionStoreError) {
      logger.error(`${error.message}: the session store failed`, error.cause);
    } else if (error instanceof CookieTooLargeError) {
      logger.error(error.message);
    } else if (error instanceof TypeError || error instanceof RangeError) {
      // A value that no longer fits the serializer: its message names the key.
      logger.error(error.message, error);
    } else {
      logger.error("Cannot complete the session after the handler as it failed", error);
    }
    return { status: 500, body: "Internal Server Error" };
  }
}

/**
 * `response` with the outcome's headers, or the outcome's failure in its
 * place, for the adapters whose framework deals in fetch `Response`s.
 */
export function applyOutcome(response: Response, outcome: SessionOutcome): Response {
  if (outcome.failure !== null) return failureResponse(outcome.failure);
  if (outcome.vary === null) return response;
  try {
    addHeaders(response.headers, outcome);
    return response;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  // Responses from Response.redirect(), Response.error() and fetch() have
  // immutable headers; such a response is copied so that it still gets its
  // cookie.
  const copy = new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  addHeaders(copy.headers, outcome);
  return copy;
}

/**
 * What {@link addHeaders} writes to: a `Headers`, or a framework's own
 * class of it (npm's Oak 14 uses undici's).
 */
export interface HeaderTarget {
  append(name: string, value: string): void;
  set(name: string, value: string): void;
}

/** Appends the outcome's Set-Cookie and sets its Vary on `headers`. */
export function addHeaders(headers: HeaderTarget, outcome: SessionOutcome): void {
  if (outcome.setCookie !== null) headers.append("Set-Cookie", outcome.setCookie);
  if (outcome.vary !== null) headers.set("Vary", outcome.vary);
}

/** The plain-text response of a failure. */
export function failureResponse(failure: SessionFailure): Response {
  return new Response(failure.body, {
    status: failure.status,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}
