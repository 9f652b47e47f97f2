// Hostile input, property-based: arbitrary Cookie headers and cookie values,
// arbitrary stored session contents, and arbitrary keys handed to a store.
// None may make the middleware throw or answer an error, read or write
// outside the store's directory, or adopt a key the server did not issue.
// Every property runs from a fixed seed (SEED in _hostile.ts); fast-check
// prints the seed and the path of a failing case, and TESSERA_FUZZ_SEED
// replays it.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection } from "node:net";
import { join, relative } from "node:path";
import fc from "fast-check";
import {
  FileStore,
  getSession,
  SessionExistsError,
  SessionInterruptedError,
  type SessionOptions,
  type SessionStore,
  withSessions,
} from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { RUNTIME, serve } from "../_server.ts";
import { type Engine, ENGINES, type OpenEngine, releaseEngines, SCRATCH } from "./_engines.ts";
import {
  type Action,
  action,
  cookieHeader,
  CORRUPT_KEYS,
  DECOY_KEY,
  EXPIRED_KEYS,
  fileBytes,
  LIVE_KEYS,
  perform,
  runs,
  SEED,
  storedData,
  storeKey,
} from "./_hostile.ts";

const HOUR = 3_600_000;
const IN_PROCESS_RUNS = runs(10_000);
// A Cookie header is parsed, and a value that is not a session key dropped,
// before any store sees it: the file and memory engines run the full count
// of header cases, and the engines that landed later, to keep the suite's
// time small, fewer; every engine runs the full count of the cases its own
// code handles (stored contents, store keys).
const HEADER_RUNS_LATER_ENGINES = runs(2000);
const FULL_HEADER_RUNS = new Set(["FileStore", "MemoryStore"]);
const REAL_SERVER_RUNS = runs(400);
const STORED_KEYS = [...LIVE_KEYS, ...EXPIRED_KEYS, ...CORRUPT_KEYS];
// The key the stored-contents properties plant their bytes under.
const CONTENT_KEY = "content0".padEnd(32, "0");
const SESSION_NAME = /^sessionid[a-z0-9]{8,40}$/;

// The configurations requests are handled with, and the attributes their
// cookies must carry: spelled out here, not taken from the code under test.
const CONFIGS: { options: SessionOptions; attributes: string; persistent: boolean }[] = [
  { options: {}, attributes: "; Path=/; HttpOnly; SameSite=Lax", persistent: true },
  {
    options: { saveEveryRequest: true },
    attributes: "; Path=/; HttpOnly; SameSite=Lax",
    persistent: true,
  },
  {
    options: { expireAtBrowserClose: true },
    attributes: "; Path=/; HttpOnly; SameSite=Lax",
    persistent: false,
  },
  {
    options: {
      cookieSecure: true,
      cookieSameSite: "None",
      cookieHttpOnly: false,
      cookiePath: "/app",
      cookieDomain: "example.com",
    },
    attributes: "; Domain=example.com; Path=/app; Secure; SameSite=None",
    persistent: true,
  },
];
const config = fc.nat(CONFIGS.length - 1);

const HTTP_DATE = "[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Checks the Set-Cookie lines of one response against the only two shapes
 * allowed, and returns the key it sets, if any. A key that came in the
 * request may only be sent back if it is a live session.
 */
function checkSetCookie(
  lines: string[],
  configIndex: number,
  request: string,
  anyExpiry = false,
): string | null {
  assert.ok(lines.length <= 1, `one Set-Cookie at most: ${lines.join(" | ")}`);
  const line = lines[0];
  if (line === undefined) return null;
  const { attributes } = CONFIGS[configIndex]!;
  // A stored expiry of 0 makes a browser-session cookie whatever the configuration.
  const persistent = CONFIGS[configIndex]!.persistent && !anyExpiry;
  if (line === `sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0${attributes}`) {
    return null;
  }
  const expiry = `; Expires=${HTTP_DATE}; Max-Age=\\d+`;
  const shape = new RegExp(
    `^sessionid=([a-z0-9]{32})(${expiry})${persistent ? "" : "?"}${escapeRegExp(attributes)}$`,
  );
  const key = shape.exec(line)?.[1];
  assert.ok(key, `a Set-Cookie of an unexpected shape: ${JSON.stringify(line)}`);
  if (request.includes(key)) {
    assert.ok(LIVE_KEYS.includes(key), `a key taken from the request was sent back: ${key}`);
  }
  return key;
}

/** What the handler saw right after getSession(). */
interface Seen {
  key: string | null;
  items: [string, unknown][];
}

/**
 * Files under `root` with their size, mtime and content, except the files
 * the engine keeps in `store` (`files`).
 */
function snapshot(root: string, store: string, files: RegExp | null): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const info = statSync(path);
      if (info.isDirectory()) {
        found.set(rel, "directory");
        walk(path);
      } else if (!(dir === store && files?.test(name))) {
        found.set(rel, `${info.size} ${info.mtimeMs} ${readFileSync(path, "base64")}`);
      }
    }
  };
  walk(root);
  return found;
}

/** One engine with its known sessions, decoys around it, and a handler per configuration. */
class Harness {
  readonly logger = new RecordingLogger();
  readonly store: SessionStore;
  readonly handlers: ((req: Request) => Promise<Response>)[];
  readonly before: Map<string, string>;
  doing: Action = "read";
  // Leave a request that loaded no session alone: creating one is covered elsewhere.
  changeLoadedOnly = false;
  seen: Seen | undefined;
  adopted = 0;
  disposed = false;

  private constructor(
    readonly root: string,
    readonly storeDir: string,
    readonly opened: OpenEngine,
  ) {
    this.store = opened.store;
    const handle = async (req: Request): Promise<Response> => {
      const doing = this.doing;
      this.seen = undefined;
      if (doing === "none") return new Response("ok");
      const session = await getSession(req);
      this.seen = { key: session.sessionKey, items: session.items() };
      if (session.sessionKey !== null) this.adopted++;
      else if (this.changeLoadedOnly && doing !== "flush") return new Response("ok");
      await perform(session, doing);
      return new Response("ok", {
        headers: { "x-session-key": this.seen.key ?? "-" },
      });
    };
    this.handlers = CONFIGS.map(({ options }) =>
      withSessions(handle, { ...options, store: this.store, logger: this.logger })
    );
    this.before = snapshot(root, storeDir, opened.files);
  }

  static async open(engine: Engine): Promise<Harness> {
    const root = mkdtempSync(join(SCRATCH, "tessera-fuzz-"));
    // The store lives three levels below the checked root, so that a path
    // climbing out of it by up to three levels still lands in the snapshot.
    const home = join(root, "up2", "up1");
    const storeDir = join(home, "store");
    mkdirSync(storeDir, { recursive: true });
    // Live-looking sessions above and beside the store, under the names a
    // path that escaped the store's directory would reach.
    const decoy = `${Date.now() + HOUR}\n{"decoy":true}`;
    for (const dir of [home, join(root, "up2"), root]) {
      writeFileSync(join(dir, `sessionid${DECOY_KEY}`), decoy, { mode: 0o600 });
      writeFileSync(join(dir, `sessionid${LIVE_KEYS[0]}`), decoy, { mode: 0o600 });
      writeFileSync(join(dir, "decoy"), decoy, { mode: 0o600 });
    }
    writeFileSync(join(storeDir, "decoy"), decoy, { mode: 0o600 });
    let opened: OpenEngine;
    try {
      opened = await engine.open(home);
    } catch (error) {
      rmSync(root, { recursive: true, force: true });
      throw error;
    }
    const harness = new Harness(root, storeDir, opened);
    openHarnesses.push(harness);
    for (const key of STORED_KEYS) await harness.reset(key);
    return harness;
  }

  /** Releases the engine and removes the directory, once; also after a failure. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.opened.close();
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Puts a known key back as the test stored it. */
  async reset(key: string): Promise<void> {
    const index = LIVE_KEYS.indexOf(key);
    const encoder = new TextEncoder();
    if (index !== -1) {
      await this.opened.plant(key, encoder.encode(`{"owner":${index}}`), Date.now() + HOUR);
    } else if (EXPIRED_KEYS.includes(key)) {
      await this.opened.plant(key, encoder.encode('{"owner":-1}'), Date.now() - HOUR);
    } else if (CORRUPT_KEYS.includes(key)) {
      await this.opened.plant(key, encoder.encode("{not a session"), Date.now() + HOUR);
    }
  }

  async request(
    cookie: string | null,
    configIndex: number,
    doing: Action,
  ): Promise<{ response: Response; seen: Seen | undefined; setCookie: string[] }> {
    this.doing = doing;
    const headers: Record<string, string> = cookie === null ? {} : { cookie };
    const response = await this.handlers[configIndex]!(
      new Request("http://127.0.0.1/app", { headers }),
    );
    await response.body?.cancel();
    return { response, seen: this.seen, setCookie: response.headers.getSetCookie() };
  }

  /** The directory check: nothing outside the store changed, no stray file inside it. */
  async finish(): Promise<void> {
    assert.deepEqual(
      snapshot(this.root, this.storeDir, this.opened.files),
      this.before,
      "nothing outside the session files changed",
    );
    for (const key of LIVE_KEYS) {
      assert.ok(await this.store.load(key), `the known session ${key} is still there`);
    }
    assert.equal(({} as { polluted?: unknown }).polluted, undefined, "no prototype was polluted");
    await this.dispose();
  }
}

const openHarnesses: Harness[] = [];
after(async () => {
  for (const harness of openHarnesses) await harness.dispose();
  await releaseEngines();
});

function ownerOf(seen: Seen): unknown {
  return Object.fromEntries(seen.items).owner;
}

/** Checks what the handler saw: a live key from the request, with its own data, or none. */
function checkAdoption(seen: Seen | undefined, request: string): void {
  if (seen === undefined || seen.key === null) return;
  assert.ok(LIVE_KEYS.includes(seen.key), `adopted a key it did not issue: ${seen.key}`);
  assert.ok(request.includes(seen.key), "adopted a key the request did not carry");
  assert.equal(ownerOf(seen), LIVE_KEYS.indexOf(seen.key), "loaded another session's data");
}

/** Whether the expiry a session keeps in its data names an instant already past. */
function ownExpiryPassed(data: Record<string, unknown>): boolean {
  const expiry = data._session_expiry;
  if (Number.isSafeInteger(expiry)) return (expiry as number) < 0;
  return typeof expiry === "string" && Date.parse(expiry) <= Date.now();
}

function mutates(doing: Action): boolean {
  return doing !== "none" && doing !== "read";
}

function report(
  property: string,
  engine: string,
  cases: number,
  started: number,
  detail: string,
): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `[fuzz] ${engine} on ${RUNTIME}: ${property}: ${cases} cases (seed ${SEED}) in ${seconds} s, ${detail}`,
  );
}

for (const engine of ENGINES) {
  const headerRuns = FULL_HEADER_RUNS.has(engine.name)
    ? IN_PROCESS_RUNS
    : HEADER_RUNS_LATER_ENGINES;
  const reduced = headerRuns < IN_PROCESS_RUNS ? `, reduced from ${IN_PROCESS_RUNS} for time` : "";
  describe(`${engine.name} against hostile input (fast-check, seed ${SEED})`, () => {
    it(`arbitrary Cookie headers: no throw, no error status, no escape, no adopted key (${headerRuns} cases${reduced}, in process)`, async () => {
      const started = performance.now();
      const harness = await Harness.open(engine);
      const warnings = harness.logger.warnings.length;
      let fresh = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.option(cookieHeader, { freq: 20 }),
          config,
          action,
          async (cookie, c, doing) => {
            const { response, seen, setCookie } = await harness.request(cookie, c, doing);
            assert.equal(response.status, 200);
            checkAdoption(seen, cookie ?? "");
            const key = checkSetCookie(setCookie, c, cookie ?? "");
            if (key !== null && !LIVE_KEYS.includes(key)) fresh++;
            if (seen?.key && mutates(doing)) await harness.reset(seen.key);
          },
        ),
        { seed: SEED, numRuns: headerRuns },
      );
      assert.deepEqual(harness.logger.errors, []);
      report(
        `Cookie headers${reduced}`,
        engine.name,
        headerRuns,
        started,
        `${harness.adopted} loaded a live session, ${fresh} were given a fresh key, ${
          harness.logger.warnings.length - warnings
        } corrupt sessions ignored with a warning`,
      );
      await harness.finish();
    });

    it(`arbitrary stored session contents: no throw, no error status, empty session and a warning when corrupt (${IN_PROCESS_RUNS} cases)`, async () => {
      const started = performance.now();
      const harness = await Harness.open(engine);
      harness.changeLoadedOnly = true;
      const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
      let loaded = 0;
      let corrupt = 0;
      await fc.assert(
        fc.asyncProperty(
          storedData,
          fc.oneof(
            fc.constant(HOUR),
            fc.integer({ min: 1000, max: HOUR }),
            fc.integer({ min: -HOUR, max: -1 }),
          ),
          config,
          action,
          async (data, expiresIn, c, doing) => {
            await harness.opened.plant(CONTENT_KEY, data, Date.now() + expiresIn);
            const warnings = harness.logger.warnings.length;
            const cookie = `sessionid=${CONTENT_KEY}`;
            const { response, seen, setCookie } = await harness.request(cookie, c, doing);
            let parsed: unknown;
            try {
              parsed = JSON.parse(decoder.decode(data));
            } catch {
              parsed = undefined;
            }
            const isSession = typeof parsed === "object" && parsed !== null &&
              !Array.isArray(parsed);
            const live = expiresIn > 0;
            if (response.status === 400) {
              // A session whose own expiry has passed is over: an engine
              // whose records expire by themselves does not store it under
              // the key cycleKey() gives it, so the save that follows finds
              // none (as Django's cache engine raises UpdateError).
              assert.ok(
                doing === "cycle" && harness.store.expiresOnItsOwn && isSession &&
                  ownExpiryPassed(parsed as Record<string, unknown>),
                "400 only for a session over by its own expiry, given a new key",
              );
              return;
            }
            assert.equal(response.status, 200);
            if (seen !== undefined) {
              assert.equal(seen.key, isSession && live ? CONTENT_KEY : null);
              if (seen.key !== null) {
                loaded++;
                const expected = Object.entries(parsed as object).filter(([name]) =>
                  name !== "_session_expiry"
                );
                assert.deepEqual(seen.items, expected);
              } else if (live) {
                corrupt++;
                assert.ok(harness.logger.warnings.length > warnings, "a corrupt session is logged");
              }
            }
            const key = checkSetCookie(setCookie, c, cookie.replace(CONTENT_KEY, ""), true);
            if (key === CONTENT_KEY) assert.ok(isSession && live);
          },
        ),
        { seed: SEED, numRuns: IN_PROCESS_RUNS },
      );
      assert.deepEqual(harness.logger.errors, []);
      report(
        "stored contents",
        engine.name,
        IN_PROCESS_RUNS,
        started,
        `${loaded} loaded as sessions, ${corrupt} ignored as corrupt with a warning`,
      );
      await harness.finish();
    });

    it(`arbitrary keys given to the store: null, false or a clean refusal, never a path outside (${IN_PROCESS_RUNS} cases)`, async () => {
      const started = performance.now();
      const harness = await Harness.open(engine);
      const store = harness.store;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(storeKey, async (key) => {
          const record = { data: '{"fuzz":1}', expiresAt: Date.now() + HOUR };
          assert.equal(await store.exists(key), STORED_KEYS.includes(key));
          // A store hands back the stored text; telling a corrupt one is the session's job.
          const loaded = await store.load(key);
          const index = LIVE_KEYS.indexOf(key);
          if (index !== -1) assert.equal(loaded?.data, `{"owner":${index}}`);
          else if (CORRUPT_KEYS.includes(key)) assert.equal(loaded?.data, "{not a session");
          else assert.equal(loaded, null);
          if (STORED_KEYS.includes(key)) {
            await store.delete(key);
            assert.equal(await store.exists(key), false);
            await harness.reset(key);
            return;
          }
          await assert.rejects(
            store.save(key, record),
            (error) => error instanceof SessionInterruptedError || error instanceof TypeError,
            "an update never creates a record",
          );
          try {
            await store.save(key, record, true);
          } catch (error) {
            assert.ok(
              error instanceof TypeError || error instanceof SessionExistsError,
              String(error),
            );
            await store.delete(key);
            return;
          }
          accepted++;
          assert.deepEqual(await store.load(key), record);
          await store.delete(key);
          assert.equal(await store.exists(key), false);
        }),
        { seed: SEED, numRuns: IN_PROCESS_RUNS },
      );
      assert.equal(typeof await store.clearExpired(), "number");
      for (const key of EXPIRED_KEYS) await harness.reset(key);
      report(
        "store keys",
        engine.name,
        IN_PROCESS_RUNS,
        started,
        `${accepted} stored under exactly that key`,
      );
      await harness.finish();
    });

    it(`arbitrary Cookie header bytes over a real socket: no 5xx, no adopted key (${REAL_SERVER_RUNS} cases)`, async () => {
      const started = performance.now();
      const harness = await Harness.open(engine);
      const server = serve((req) => harness.handlers[0]!(req));
      const port = Number(new URL(server.url).port);
      const statuses = new Map<number, number>();
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.oneof(
                cookieHeader.map((text) => latin1(text)),
                fc.uint8Array({ maxLength: 120 }).map((bytes) =>
                  bytes.filter((b) => b !== 10 && b !== 13)
                ),
              ),
              { maxLength: 3 },
            ),
            action,
            async (cookies, doing) => {
              harness.doing = doing;
              const answer = await rawRequest(port, cookies);
              statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
              assert.ok(answer.status < 500, `answered ${answer.status}`);
              if (answer.status !== 200) return;
              const sent = cookies.map((bytes) => String.fromCharCode(...bytes)).join("\n");
              const adopted = answer.headers.get("x-session-key");
              if (adopted !== undefined && adopted !== "-") {
                assert.ok(LIVE_KEYS.includes(adopted), `adopted ${adopted}`);
                assert.ok(sent.includes(adopted));
                if (mutates(doing)) await harness.reset(adopted);
              }
              checkSetCookie(answer.setCookie, 0, sent);
            },
          ),
          { seed: SEED, numRuns: REAL_SERVER_RUNS },
        );
      } finally {
        await server.close();
      }
      assert.deepEqual(harness.logger.errors, []);
      report(
        "raw Cookie header bytes over a socket",
        engine.name,
        REAL_SERVER_RUNS,
        started,
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      await harness.finish();
    });
  });
}

describe(`FileStore session files of arbitrary bytes (fast-check, seed ${SEED})`, () => {
  it(`never crash a load: an empty session and a warning unless whole, live and a JSON object (${IN_PROCESS_RUNS} cases)`, async () => {
    const started = performance.now();
    const root = mkdtempSync(join(SCRATCH, "tessera-fuzz-files-"));
    const store = new FileStore({ path: root });
    const logger = new RecordingLogger();
    let seen: Seen | undefined;
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      seen = { key: session.sessionKey, items: session.items() };
      // Saving a session loaded from odd bytes must work too.
      if (session.sessionKey !== null) session.set("touched", true);
      return new Response("ok");
    }, { store, logger });
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    let loaded = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fileBytes, async (bytes) => {
          writeFileSync(store.fileOf(CONTENT_KEY), bytes, { mode: 0o600 });
          const warnings = logger.warnings.length;
          const response = await handler(
            new Request("http://127.0.0.1/", { headers: { cookie: `sessionid=${CONTENT_KEY}` } }),
          );
          assert.equal(response.status, 200);
          // The format: the expiry instant in ms on the first line, the data after.
          const text = decoder.decode(bytes);
          const newline = text.indexOf("\n");
          const expiresAt = newline > 0 ? Number(text.slice(0, newline)) : NaN;
          let data: unknown;
          try {
            data = JSON.parse(text.slice(newline + 1));
          } catch {
            data = undefined;
          }
          const expired = Number.isFinite(expiresAt) && expiresAt <= Date.now();
          const whole = Number.isFinite(expiresAt) && typeof data === "object" && data !== null &&
            !Array.isArray(data);
          assert.equal(seen?.key, whole && !expired ? CONTENT_KEY : null);
          if (seen?.key) loaded++;
          else if (!expired) {
            assert.ok(logger.warnings.length > warnings, "a corrupt file is logged");
          }
        }),
        { seed: SEED, numRuns: IN_PROCESS_RUNS },
      );
      assert.deepEqual(logger.errors, []);
      assert.ok(readdirSync(root).every((name) => SESSION_NAME.test(name)), "no stray file");
      report(
        "session file bytes",
        "FileStore",
        IN_PROCESS_RUNS,
        started,
        `${loaded} loaded as sessions`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

interface RawAnswer {
  // 0: the runtime's HTTP layer closed the connection without an answer.
  status: number;
  headers: Map<string, string>;
  setCookie: string[];
}

/**
 * Sends one GET with these Cookie header lines on a fresh connection and
 * reads the answer head (the handler's bodies are tiny and not needed).
 */
function rawRequest(port: number, cookies: Uint8Array[]): Promise<RawAnswer> {
  const head = latin1(`GET /app HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`);
  const parts = [head];
  for (const cookie of cookies) parts.push(latin1("Cookie: "), cookie, latin1("\r\n"));
  parts.push(latin1("\r\n"));
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let text = "";
    let done = false;
    const finish = (answer: RawAnswer | Error) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    socket.setTimeout(10_000, () => finish(new Error("no answer within 10 s")));
    socket.on("data", (chunk: Uint8Array) => {
      text += String.fromCharCode(...chunk);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) finish(parseHead(text.slice(0, end)));
    });
    // A reset or a close before any answer: the request never reached a handler.
    socket.on("error", () => finish(emptyAnswer()));
    socket.on(
      "close",
      () => finish(text === "" ? emptyAnswer() : new Error(`cut answer: ${text}`)),
    );
    socket.write(concat(parts));
  });
}

function emptyAnswer(): RawAnswer {
  return { status: 0, headers: new Map(), setCookie: [] };
}

function parseHead(head: string): RawAnswer | Error {
  const [statusLine = "", ...lines] = head.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status)) return new Error(`no HTTP answer: ${JSON.stringify(head)}`);
  const headers = new Map<string, string>();
  const setCookie: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "set-cookie") setCookie.push(value);
    else headers.set(name, value);
  }
  return { status, headers, setCookie };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
