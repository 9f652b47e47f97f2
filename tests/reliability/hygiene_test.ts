// Cookie hygiene: the name prefixes and SameSite=None as browsers enforce
// them, Set-Cookie attributes that only the validated options can shape, and
// secrets and session keys that never reach a log or an error message, on
// every error path the test can provoke.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import fc from "fast-check";
import {
  CookieStore,
  FileStore,
  getSession,
  type Logger,
  MemoryStore,
  type Session,
  type SessionOptions,
  withSessions,
} from "../../mod.ts";
import { RUNTIME } from "../_server.ts";
import { sealStore } from "../../src/stores/_sealed.ts";
import { ENGINES, releaseEngines } from "./_engines.ts";
import { runs, SEED } from "./_hostile.ts";
import { judge, payloadOf, signJson, signPayload } from "./_signed.ts";

after(releaseEngines);

// Every secret carries the marker, so a fragment of one is found too.
const MARKER = "Zq9Xw";
const SECRET = `current-${MARKER}-secret-0123456789abcdef`;
const OLD_SECRET = `previous-${MARKER}-secret-fedcba9876543210`;
const SHORT_SECRET = `short-${MARKER}-sec`;
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const OPTION_RUNS = runs(2000);

function cookieOf(response: Response, name = "sessionid"): string | undefined {
  const line = response.headers.getSetCookie().find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1).split(";")[0];
}

function request(cookie?: string, path = "/"): Request {
  const headers: Record<string, string> = cookie === undefined ? {} : { cookie };
  return new Request(`http://127.0.0.1${path}`, { headers });
}

describe("cookie name prefixes and SameSite=None, as browsers enforce them", () => {
  it("sends a __Host- cookie with Secure, Path=/ and no Domain, and deletes it the same way", async () => {
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/out") await session.flush();
      else session.set("n", 1);
      return new Response("ok");
    }, { store: new MemoryStore(), cookieName: "__Host-id", cookieSecure: true });
    const first = await handler(request());
    const [set] = first.headers.getSetCookie();
    assert.match(
      set!,
      /^__Host-id=[a-z0-9]{32}; Expires=[^;]+; Max-Age=\d+; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
    );
    const out = await handler(request(`__Host-id=${cookieOf(first, "__Host-id")}`, "/out"));
    assert.deepEqual(out.headers.getSetCookie(), [
      "__Host-id=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax",
    ]);
  });

  it("sends a __Secure- cookie and a SameSite=None cookie with Secure", async () => {
    const set = (options: SessionOptions) =>
      withSessions(async (req) => {
        (await getSession(req)).set("n", 1);
        return new Response("ok");
      }, { store: new MemoryStore(), ...options })(request());
    const secure = await set({ cookieName: "__Secure-id", cookieSecure: true, cookiePath: "/a" });
    assert.match(
      secure.headers.get("set-cookie")!,
      /^__Secure-id=[a-z0-9]{32};.*; Path=\/a; Secure;/,
    );
    const none = await set({ cookieSameSite: "None", cookieSecure: true });
    assert.match(none.headers.get("set-cookie")!, /; Secure; HttpOnly; SameSite=None$/);
  });

  it("refuses every prefix and SameSite combination a browser would drop, in any letter case", () => {
    const refused: SessionOptions[] = [
      { cookieName: "__Host-id" },
      { cookieName: "__host-id" },
      { cookieName: "__HOST-id", cookieSecure: true, cookiePath: "/app" },
      { cookieName: "__Host-id", cookieSecure: true, cookieDomain: "example.com" },
      { cookieName: "__Secure-id" },
      { cookieName: "__secure-id", cookieSameSite: "Strict" },
      { cookieSameSite: "None" },
      { cookieSameSite: "none" as "None" },
    ];
    for (const options of refused) {
      assert.throws(
        () => withSessions(() => new Response("ok"), options),
        TypeError,
        JSON.stringify(options),
      );
    }
  });
});

describe("Set-Cookie attributes come from the validated options only", () => {
  it("builds nothing from the request: not its host, path, headers or cookies", async () => {
    const handler = withSessions(async (req) => {
      (await getSession(req)).set("n", 1);
      return new Response("ok");
    }, { store: new MemoryStore() });
    const hostile = new Request("http://evil.example/a;Domain=evil.example;Path=/x?Secure=0", {
      headers: {
        cookie: "sessionid=x; Domain=evil.example; Path=/evil; SameSite=None",
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
        forwarded: "host=evil.example;proto=https",
      },
    });
    const [line, ...more] = (await handler(hostile)).headers.getSetCookie();
    assert.deepEqual(more, []);
    const parts = line!.split("; ");
    assert.match(parts[0]!, /^sessionid=[a-z0-9]{32}$/);
    assert.match(parts[1]!.replace(/^Expires=/, ""), HTTP_DATE);
    assert.deepEqual(parts.slice(2), ["Max-Age=1209600", "Path=/", "HttpOnly", "SameSite=Lax"]);
  });

  it(`never lets an option inject an attribute: refused, or shown exactly as given (fast-check, ${OPTION_RUNS} cases, seed ${SEED})`, async () => {
    const text = fc.string({ unit: "binary-ascii", maxLength: 24 });
    const options = fc.record({
      cookieName: fc.oneof(text, fc.constantFrom("sid", "__Host-id", "__Secure-id", "a=b", "a;b")),
      cookiePath: fc.oneof(text, text.map((path) => `/${path}`), fc.constant("/")),
      cookieDomain: fc.oneof(text, fc.constantFrom("example.com", ".example.com", "a..b")),
      cookieSecure: fc.boolean(),
      cookieHttpOnly: fc.boolean(),
      cookieSameSite: fc.constantFrom<SessionOptions["cookieSameSite"]>(
        "Lax",
        "Strict",
        "None",
        false,
        "strict" as "Strict",
      ),
    }, { requiredKeys: [] });
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(options, async (given) => {
        let handler;
        try {
          handler = withSessions(async (req) => {
            (await getSession(req)).set("n", 1);
            return new Response("ok");
          }, { ...given, store: new MemoryStore() } as SessionOptions);
        } catch (error) {
          assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
          return;
        }
        accepted++;
        const [line] = (await handler(request())).headers.getSetCookie();
        assert.ok(line !== undefined && /^[\x20-\x7e]+$/.test(line), JSON.stringify(line));
        const sameSite = given.cookieSameSite === undefined ? "Lax" : given.cookieSameSite &&
          `${given.cookieSameSite[0]!.toUpperCase()}${given.cookieSameSite.slice(1).toLowerCase()}`;
        const expected = [
          `${given.cookieName ?? "sessionid"}=KEY`,
          "Expires=DATE",
          "Max-Age=1209600",
          ...(given.cookieDomain === undefined ? [] : [`Domain=${given.cookieDomain}`]),
          `Path=${given.cookiePath ?? "/"}`,
          ...(given.cookieSecure ? ["Secure"] : []),
          ...(given.cookieHttpOnly === false ? [] : ["HttpOnly"]),
          ...(sameSite ? [`SameSite=${sameSite}`] : []),
        ];
        const actual = line.split("; ")
          .map((part) => part.replace(/=[a-z0-9]{32}$/, "=KEY"))
          .map((part) => part.replace(/^Expires=.*GMT$/, "Expires=DATE"));
        assert.deepEqual(actual, expected);
      }),
      { seed: SEED, numRuns: OPTION_RUNS },
    );
    console.log(
      `[hygiene] options on ${RUNTIME}: ${OPTION_RUNS} cases (seed ${SEED}), ${accepted} accepted and shown exactly as given, the rest refused at withSessions()`,
    );
    assert.ok(accepted > 0);
  });

  it("sends a well-formed Expires for a stored or requested expiry past the year 9999", async () => {
    const store = new MemoryStore();
    const key = await store.create({
      data: JSON.stringify({ n: 1, _session_expiry: Number.MAX_SAFE_INTEGER }),
      expiresAt: Date.now() + 60_000,
    });
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      const path = new URL(req.url).pathname;
      if (path === "/number") session.setExpiry(Number.MAX_SAFE_INTEGER);
      if (path === "/date") session.setExpiry(new Date(8_640_000_000_000_000));
      session.set("n", 2);
      return new Response("ok");
    }, { store });
    for (
      const response of [
        await handler(request(`sessionid=${key}`)),
        await handler(request(undefined, "/number")),
        await handler(request(undefined, "/date")),
      ]
    ) {
      const line = response.headers.get("set-cookie")!;
      const expires = /; Expires=([^;]+);/.exec(line)?.[1] ?? "";
      assert.match(expires, HTTP_DATE, line);
      assert.ok(!Number.isNaN(Date.parse(expires)));
    }
  });
});

/** Everything the code under test said: log lines, errors, console output, answers. */
class Transcript {
  readonly entries: string[] = [];

  add(...values: unknown[]): void {
    for (const value of values) {
      if (typeof value === "string") {
        this.entries.push(value);
        continue;
      }
      this.entries.push(inspect(value, { depth: 10 }));
      // The message, stack and every cause, also when inspect() abbreviates.
      let error: unknown = value;
      while (error instanceof Error) {
        this.entries.push(String(error), error.stack ?? "");
        error = error.cause;
      }
    }
  }

  readonly logger: Logger = {
    warn: (message) => this.add(message),
    error: (message, error) => this.add(message, error),
  };

  /** Runs `action` with every console method recording here. */
  async withConsole<T>(action: () => Promise<T>): Promise<T> {
    const methods = ["log", "info", "warn", "error", "debug", "trace"] as const;
    const saved = methods.map((name) => console[name]);
    for (const name of methods) console[name] = (...args: unknown[]) => this.add(...args);
    try {
      return await action();
    } finally {
      methods.forEach((name, i) => (console[name] = saved[i]!));
    }
  }

  /** Runs `action` and records what it throws. */
  async caught(action: () => unknown): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.add(error);
    }
  }

  /** Misuses `session` in each way that throws, recording the errors. */
  async misuse(session: Session): Promise<void> {
    await this.caught(() => session.set("f", (() => 1) as never));
    await this.caught(() => session.setExpiry(1.5));
    await this.caught(() => session.setExpiry(new Date(NaN)));
    await this.caught(() => session.set("_session_expiry", 1));
  }

  includes(pattern: RegExp): boolean {
    return this.entries.some((entry) => pattern.test(entry));
  }

  /** Fails if any secret, a fragment of one, or any of `keys` was said. */
  assertClean(keys: Iterable<string>): void {
    const text = this.entries.join("\n");
    for (const secret of [SECRET, OLD_SECRET, SHORT_SECRET, MARKER]) {
      assert.ok(!text.includes(secret), `a secret was logged or thrown: ${secret}`);
    }
    for (const key of keys) {
      assert.ok(!text.includes(key), `a session key was logged or thrown: ${key}`);
    }
  }
}

describe("secrets and session keys never reach logs or error messages", () => {
  it("in option errors, a bad secret list included", async () => {
    const transcript = new Transcript();
    const handler = () => new Response("ok");
    const bad: unknown[] = [
      { secret: SHORT_SECRET },
      { secret: [SECRET, SHORT_SECRET] },
      { secret: [SECRET, OLD_SECRET, SHORT_SECRET] },
      { secret: [SECRET, 42] },
      { secret: [SECRET, { value: OLD_SECRET }] },
      { secret: [SECRET, [OLD_SECRET]] },
      { secret: { current: SECRET } },
      { secret: [] },
      { secret: [SECRET], cookieAge: -1 },
      { secret: [SECRET], cookieSameSite: "None" },
      { secret: [SECRET], cookieName: "__Host-id" },
      { secret: [SECRET], store: { secret: SECRET } },
      { secret: [SECRET], logger: { secret: SECRET } },
      { secret: [SECRET], serializer: { secret: SECRET } },
      { secret: SECRET, secrets: [OLD_SECRET] },
    ];
    for (const options of bad) {
      assert.throws(
        () => withSessions(handler, options as SessionOptions),
        JSON.stringify(options),
      );
      await transcript.caught(() => withSessions(handler, options as SessionOptions));
    }
    assert.equal(transcript.entries.length > bad.length, true);

    // Any secret option at all: refused without an echo, or accepted.
    const marked = fc.string({ maxLength: 40 }).map((text) => `${MARKER}${text}`);
    const secretOption = fc.oneof(
      marked,
      fc.array(fc.oneof(marked, fc.anything()), { maxLength: 4 }),
      fc.anything(),
    );
    let refused = 0;
    fc.assert(
      fc.property(secretOption, (secret) => {
        try {
          withSessions(handler, { secret } as SessionOptions);
        } catch (error) {
          refused++;
          const text = `${inspect(error)} ${String(error)}`;
          assert.ok(!text.includes(MARKER), text);
        }
      }),
      { seed: SEED, numRuns: OPTION_RUNS },
    );
    transcript.assertClean([]);
    console.log(
      `[hygiene] secrets on ${RUNTIME}: ${bad.length} bad option sets and ${OPTION_RUNS} arbitrary secret options (seed ${SEED}, ${refused} refused): no secret in any message`,
    );
  });

  for (const engine of ENGINES) {
    it(`${engine.name}: corrupt data, a concurrent delete, an oversized cookie and misuse`, async () => {
      const root = mkdtempSync(join(tmpdir(), "tessera-hygiene-"));
      const opened = await engine.open(root);
      const store = opened.store;
      const transcript = new Transcript();
      const keys = new Set<string>();
      try {
        await transcript.withConsole(async () => {
          const options = { store, secret: [SECRET, OLD_SECRET], logger: transcript.logger };
          const handler = withSessions(async (req) => {
            const path = new URL(req.url).pathname;
            const session = await getSession(req);
            if (path === "/race") await store.delete(session.sessionKey!);
            if (path === "/create-taken") await transcript.caught(() => session.save(true));
            if (path === "/misuse") await transcript.misuse(session);
            session.set("n", 1);
            return new Response("ok");
          }, options);
          const big = withSessions(async (req) => {
            (await getSession(req)).set("n", 1);
            return new Response("ok");
          }, { ...options, cookiePath: `/${"p".repeat(4100)}` });
          const answers: Response[] = [];
          const send = async (path: string, cookie?: string) => {
            const response = await handler(request(cookie, path));
            answers.push(response);
            const key = cookieOf(response);
            if (key) keys.add(key);
            return key;
          };

          const live = (await send("/"))!;
          const corrupt = "corrupt0".padEnd(32, "0");
          keys.add(corrupt);
          await opened.plant(corrupt, new TextEncoder().encode("{corrupt"), Date.now() + 60_000);
          await send("/", `sessionid=${corrupt}`);
          // Corrupt data that this application did sign: past the signature check.
          const signedCorrupt = "corrupt1".padEnd(32, "1");
          keys.add(signedCorrupt);
          await sealStore(store, {
            secrets: [SECRET],
            logger: transcript.logger,
            acceptUnsigned: false,
          })
            .save(signedCorrupt, { data: "{corrupt", expiresAt: Date.now() + 60_000 }, true);
          await send("/", `sessionid=${signedCorrupt}`);
          await send("/race", `sessionid=${live}`);
          const other = (await send("/"))!;
          await send("/create-taken", `sessionid=${other}`);
          await send("/misuse", `sessionid=${other}`);
          const forged = "forged00".padEnd(32, "f");
          keys.add(forged);
          await send("/", `sessionid=${forged}`);
          answers.push(await big(request()));
          await transcript.caught(() => getSession(request(`sessionid=${other}`)));
          for (const answer of answers) transcript.add(await answer.text());

          assert.deepEqual(answers.map((a) => a.status), [
            200,
            200,
            200,
            400,
            200,
            200,
            200,
            200,
            500,
          ]);
        });
        for (
          const said of [
            /corrupt/i,
            /SuspiciousSession/,
            /deleted before the request completed/,
            /already in use/,
            /JSON cannot represent it faithfully/,
            /whole number of seconds/,
            /the Date is invalid/,
            /4096-byte limit/,
            /inside withSessions/,
          ]
        ) {
          assert.ok(transcript.includes(said), `the error path ${said} was provoked`);
        }
        transcript.assertClean(keys);
        console.log(
          `[hygiene] ${engine.name} on ${RUNTIME}: ${transcript.entries.length} log lines, errors and answers searched: no secret, none of ${keys.size} session keys`,
        );
      } finally {
        await opened.close();
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  it("CookieStore: tampered, foreign, corrupt, expired and oversized cookies, a missing secret and misuse", async () => {
    const transcript = new Transcript();
    // Every cookie value sent or issued, and its readable payload.
    const values = new Set<string>();
    const remember = (value: string | undefined) => {
      if (value === undefined) return;
      values.add(value);
      const payload = value.split(":")[0]!;
      if (payload.length >= 8) values.add(payload);
    };
    const now = Math.floor(Date.now() / 1000);
    const foreign = `foreign-${MARKER}-secret-00112233445566778899`;
    let reissued: string | undefined;
    await transcript.withConsole(async () => {
      const options = {
        store: new CookieStore(),
        secret: [SECRET, OLD_SECRET],
        logger: transcript.logger,
      };
      const handler = withSessions(async (req) => {
        const path = new URL(req.url).pathname;
        const session = await getSession(req);
        if (path === "/create-taken") await transcript.caught(() => session.save(true));
        if (path === "/misuse") await transcript.misuse(session);
        // Random text: deflating it saves nothing.
        if (path === "/big") {
          session.set("big", crypto.getRandomValues(new Uint8Array(4000)).toBase64());
        }
        session.set("n", 1);
        return new Response("ok");
      }, options);
      const bigPath = withSessions(async (req) => {
        (await getSession(req)).set("n", 1);
        return new Response("ok");
      }, { ...options, store: new CookieStore(), cookiePath: `/${"p".repeat(4100)}` });
      const answers: Response[] = [];
      const send = async (path: string, value?: string) => {
        remember(value);
        const response = await handler(request(value && `sessionid=${value}`, path));
        answers.push(response);
        const issued = cookieOf(response);
        remember(issued || undefined);
        return issued;
      };

      const live = (await send("/"))!;
      const flipped = live.slice(0, 5) + (live[5] === "A" ? "B" : "A") + live.slice(6);
      const bomb = payloadOf(new TextEncoder().encode(`{"a":"${" ".repeat(2_097_152)}"}`), true);
      reissued = await send("/", signJson('{"n":1}', now, OLD_SECRET));
      await send("/", flipped);
      await send("/", live.slice(0, -3));
      await send("/", signJson('{"n":1}', now, foreign));
      await send("/", signJson('{"n":1}', now, SECRET, { salt: "django.core.signing" }));
      // Correctly signed, but not base64url (5 characters), not zlib, not an object.
      await send("/", signPayload("abcde", now, SECRET));
      await send("/", signPayload(".AAAAAAAAAAAA", now, SECRET));
      await send("/", signJson("[1,2,3]", now, SECRET));
      await send("/", signJson('{"n":1}', now - 1_209_600 - 60, SECRET));
      await send("/", signPayload(bomb, now, SECRET));
      await send("/create-taken", live);
      await send("/misuse", live);
      await send("/big", live);
      answers.push(await bigPath(request()));
      await transcript.caught(() => getSession(request(`sessionid=${live}`)));
      await transcript.caught(() =>
        withSessions(() => new Response("ok"), { store: new CookieStore() })
      );
      await transcript.caught(() => new CookieStore().load(live));
      await transcript.caught(() => new CookieStore().create({ data: "{}", expiresAt: 0 }));
      for (const answer of answers) transcript.add(await answer.text());

      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 500, 500],
      );
    });
    assert.equal(judge(reissued!, [SECRET]).secretIndex, 0, "an old cookie is signed again");
    for (
      const said of [
        /Suspicious session cookie/,
        /could not be decoded/,
        /not a JSON object/,
        /expired/,
        /JSON cannot represent it faithfully/,
        /whole number of seconds/,
        /the Date is invalid/,
        /4096-byte limit/,
        /inside withSessions/,
        /CookieStore needs 'secret'/,
        /before it is configured/,
      ]
    ) {
      assert.ok(transcript.includes(said), `the error path ${said} was provoked`);
    }
    transcript.assertClean(values);
    assert.ok(!transcript.entries.join("\n").includes(foreign), "the foreign secret was said");
    console.log(
      `[hygiene] CookieStore on ${RUNTIME}: ${transcript.entries.length} log lines, errors and answers searched: no secret, none of ${values.size} cookie values and payloads`,
    );
  });

  it("FileStore: failed loads, saves, deletes, key cycles and sweeps, logged to the console", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-hygiene-files-"));
    const transcript = new Transcript();
    const keys = new Set<string>();
    try {
      await transcript.withConsole(async () => {
        const store = new FileStore({ path: dir });
        // No logger: the default one is the console.
        const handler = withSessions(async (req) => {
          const path = new URL(req.url).pathname;
          const session = await getSession(req);
          const file = session.sessionKey === null ? null : store.fileOf(session.sessionKey);
          if (path === "/logout" && file !== null) {
            // The file turns into a directory between load and delete (not
            // empty: Deno's unlink() removes an empty one).
            rmSync(file);
            mkdirSync(file);
            writeFileSync(join(file, "in-the-way"), "");
            await session.flush();
          }
          if (path === "/login") {
            rmSync(dir, { recursive: true });
            await session.cycleKey();
          }
          session.set("n", 1);
          return new Response("ok");
        }, { store, secret: SECRET });
        const send = async (path: string, key?: string) => {
          const response = await handler(request(key && `sessionid=${key}`, path));
          transcript.add(await response.text());
          const set = cookieOf(response);
          if (set) keys.add(set);
          return { status: response.status, key: set };
        };

        const a = (await send("/")).key!;
        const b = (await send("/")).key!;
        assert.equal((await send("/logout", a)).status, 500, "a failed delete");
        // The session directory turned into a symlink to itself: a failed
        // load (a directory at the file's name would only be ignored).
        renameSync(dir, `${dir}-aside`);
        symlinkSync(dir, dir);
        assert.equal((await send("/", a)).status, 500, "a failed load (a looping directory)");
        rmSync(dir);
        renameSync(`${dir}-aside`, dir);
        const swept = "abcdefgh12345678abcdefgh12345678";
        keys.add(swept);
        mkdirSync(join(dir, `sessionid${swept}`));
        utimesSync(join(dir, `sessionid${swept}`), new Date(0), new Date(0));
        await transcript.caught(async () => transcript.add(String(await store.clearExpired())));
        assert.equal((await send("/login", b)).status, 500, "a failed key cycle");
        assert.equal((await send("/")).status, 500, "a failed save");
        await transcript.caught(() => store.clearExpired());
        await transcript.caught(() => new FileStore({ path: join(dir, "gone") }));
      });
      for (
        const said of [
          /Cannot delete the session/,
          /Cannot load the session/,
          /Cannot move the session to a new key/,
          /Cannot save the session/,
          /Cannot list the session directory/,
          /not an existing directory/,
        ]
      ) {
        assert.ok(transcript.includes(said), `the error path ${said} was provoked`);
      }
      transcript.assertClean(keys);
      console.log(
        `[hygiene] FileStore failures on ${RUNTIME}: ${transcript.entries.length} console lines and errors searched: no secret, none of ${keys.size} session keys`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
