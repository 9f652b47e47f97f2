// Authenticated records, attacked on every server-side engine: with a
// secret, a session is only ever what this application signed. Each test
// plants or alters a record the way someone who can write the store would
// (a file in a shared temp dir, a row, a Redis value), then sends its key
// through withSessions, as the attacker's browser would.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { getSession, type Logger, type SessionOptions, withSessions } from "../../mod.ts";
import { ENGINES, type OpenEngine, releaseEngines, SCRATCH } from "./_engines.ts";

after(releaseEngines);

const SECRET = "sealed-records-current-secret-0123456789";
const OLD_SECRET = "sealed-records-previous-secret-987654321";
const OTHER_APP_SECRET = "another-application-secret-000000000000";
const encoder = new TextEncoder();

interface Answer {
  data: Record<string, unknown>;
  cookie: string | undefined;
  setCookie: string | null;
}

/** A logger that keeps what it is told, to check warnings and that no key leaks. */
function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (message) => void lines.push(message),
    error: (message) => void lines.push(message),
  };
}

/** An app: /login puts user=ada in the session, / shows the session. */
function app(engine: OpenEngine, options: SessionOptions) {
  const handler = withSessions(async (req) => {
    const session = await getSession<Record<string, unknown>>(req);
    if (new URL(req.url).pathname === "/login") {
      await session.cycleKey();
      session.set("user", "ada");
    }
    return Response.json(Object.fromEntries(session.items()));
  }, { store: engine.store, ...options });
  return async (path: string, key?: string): Promise<Answer> => {
    const headers: Record<string, string> = key === undefined ? {} : { cookie: `sessionid=${key}` };
    const response = await handler(new Request(`http://127.0.0.1${path}`, { headers }));
    const setCookie = response.headers.get("set-cookie");
    const value = setCookie?.match(/^sessionid=([^;]*)/)?.[1];
    return { data: await response.json(), cookie: value || undefined, setCookie };
  };
}

for (const engine of ENGINES) {
  describe(`${engine.name} with a secret: records are authenticated`, () => {
    let root: string;
    let open: OpenEngine;
    before(async () => {
      root = mkdtempSync(join(SCRATCH, "tessera-sealed-"));
      open = await engine.open(root);
    });
    after(async () => {
      await open.close();
      rmSync(root, { recursive: true, force: true });
    });

    async function logIn(options: SessionOptions = { secret: SECRET }): Promise<string> {
      const { cookie } = await app(open, options)("/login");
      assert.ok(cookie, "the login sets a session cookie");
      return cookie;
    }

    it("ignores a planted record, logs it as suspicious and deletes the cookie", async () => {
      const logger = recorder();
      const key = "plantedkey000000000000000admin01";
      await open.plant(key, encoder.encode('{"user":"admin"}'), Date.now() + 3_600_000);
      const answer = await app(open, { secret: SECRET, logger })("/", key);
      assert.deepEqual(answer.data, {});
      assert.match(answer.setCookie!, /^sessionid=; Expires=Thu, 01 Jan 1970/);
      assert.equal(logger.lines.length, 1);
      assert.match(logger.lines[0]!, /without a signature was ignored \(SuspiciousSession\)/);
      assert.ok(!logger.lines[0]!.includes(key), "the warning never names the key");
    });

    it("ignores a signed record whose data was edited", async () => {
      const key = await logIn();
      const stored = (await open.store.load(key))!;
      assert.match(stored.data, /^s1:[A-Za-z0-9_-]{43}:\{"user":"ada"\}$/);
      await open.plant(key, encoder.encode(stored.data.replace("ada", "eve")), stored.expiresAt);
      const logger = recorder();
      assert.deepEqual((await app(open, { secret: SECRET, logger })("/", key)).data, {});
      assert.match(logger.lines[0]!, /signature does not verify/);
    });

    it("ignores a signed record copied to another key", async () => {
      const key = await logIn();
      const stored = (await open.store.load(key))!;
      const copy = "copiedkey0000000000000000000000x";
      await open.plant(copy, encoder.encode(stored.data), stored.expiresAt);
      const request = app(open, { secret: SECRET, logger: recorder() });
      assert.deepEqual((await request("/", copy)).data, {});
      assert.deepEqual((await request("/", key)).data, { user: "ada" });
    });

    it("ignores a signed record given a later expiry", async () => {
      const key = await logIn();
      const stored = (await open.store.load(key))!;
      await open.plant(key, encoder.encode(stored.data), stored.expiresAt + 86_400_000);
      const request = app(open, { secret: SECRET, logger: recorder() });
      assert.deepEqual((await request("/", key)).data, {});
    });

    it("ignores a record another application signed with its own secret", async () => {
      const key = await logIn({ secret: OTHER_APP_SECRET });
      const request = app(open, { secret: SECRET, logger: recorder() });
      assert.deepEqual((await request("/", key)).data, {});
    });

    it("verifies with an old secret and re-signs with the current one on that request", async () => {
      const key = await logIn({ secret: OLD_SECRET });
      const rotated = await app(open, { secret: [SECRET, OLD_SECRET] })("/", key);
      assert.deepEqual(rotated.data, { user: "ada" });
      assert.equal(rotated.cookie, key, "re-signed in place, under the same key");
      const current = await app(open, { secret: SECRET, logger: recorder() })("/", key);
      assert.deepEqual(current.data, { user: "ada" }, "the current secret alone now verifies it");
    });

    it("logs out a session stored without a secret, unless acceptUnsignedRecords re-signs it", async () => {
      const before = await logIn({});
      const strict = recorder();
      assert.deepEqual((await app(open, { secret: SECRET, logger: strict })("/", before)).data, {});
      assert.match(strict.lines[0]!, /without a signature/);

      const kept = await logIn({});
      const window = await app(open, { secret: SECRET, acceptUnsignedRecords: true })("/", kept);
      assert.deepEqual(window.data, { user: "ada" });
      assert.equal(window.cookie, kept, "accepted and signed on this request");
      const after = await app(open, { secret: SECRET, logger: recorder() })("/", kept);
      assert.deepEqual(after.data, { user: "ada" }, "signed now, so the window can close");
    });

    it("without a secret, loads a planted record (the exposure docs/security.md describes)", async () => {
      const key = "plantedkey000000000000000admin02";
      await open.plant(key, encoder.encode('{"user":"admin"}'), Date.now() + 3_600_000);
      assert.deepEqual((await app(open, {})("/", key)).data, { user: "admin" });
    });
  });
}

describe("acceptUnsignedRecords", () => {
  it("is refused without a secret, at withSessions", () => {
    assert.throws(
      () => withSessions(() => new Response("ok"), { acceptUnsignedRecords: true }),
      { name: "TypeError", message: /'acceptUnsignedRecords' must be false unless 'secret'/ },
    );
  });
});

describe("FileStore's sweeper with signed records", () => {
  it("judges expiry only: two applications on one directory keep each other's live sessions", async () => {
    const root = mkdtempSync(join(SCRATCH, "tessera-sealed-sweep-"));
    try {
      const [first, second] = [await ENGINES[0]!.open(root), await ENGINES[0]!.open(root)];
      const mine = await app(first, { secret: SECRET })("/login");
      const theirs = await app(second, { secret: OTHER_APP_SECRET })("/login");
      assert.equal(await first.store.clearExpired(), 0);
      assert.deepEqual((await app(first, { secret: SECRET })("/", mine.cookie)).data, {
        user: "ada",
      });
      const request = app(second, { secret: OTHER_APP_SECRET });
      assert.deepEqual((await request("/", theirs.cookie)).data, { user: "ada" });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
