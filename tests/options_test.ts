import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore, MemoryStore, type SessionOptions, withSessions } from "../mod.ts";

const handler = (): Response => new Response("ok");
const SECRET = "s".repeat(32);

function rejects(options: unknown, name: string, message: RegExp): void {
  assert.throws(() => withSessions(handler, options as SessionOptions), { name, message });
}

describe("withSessions() options", () => {
  it("accepts Django's defaults without options", () => {
    assert.equal(typeof withSessions(handler), "function");
  });

  it("rejects a negative, fractional or non-numeric cookieAge", () => {
    rejects(
      { cookieAge: -5 },
      "RangeError",
      /'cookieAge' must be a non-negative whole number of seconds: current value is -5$/,
    );
    rejects({ cookieAge: 1.5 }, "RangeError", /'cookieAge'.*1\.5/);
    rejects({ cookieAge: "60" }, "TypeError", /'cookieAge'.*"60"/);
  });

  it("rejects an unknown SameSite and accepts any case of a known one", () => {
    rejects(
      { cookieSameSite: "Relaxed" },
      "TypeError",
      /'cookieSameSite' must be 'Lax', 'Strict', 'None' or false/,
    );
    withSessions(handler, { cookieSameSite: "strict" as "Strict" });
  });

  it("enforces the name prefixes in any letter case, as browsers match them (RFC 6265bis)", () => {
    rejects({ cookieName: "__secure-id" }, "TypeError", /'cookieSecure' must be true/);
    rejects({ cookieName: "__SECURE-id" }, "TypeError", /'cookieSecure' must be true/);
    rejects({ cookieName: "__host-id" }, "TypeError", /'cookieSecure' must be true/);
    rejects(
      { cookieName: "__HoSt-id", cookieSecure: true, cookiePath: "/app" },
      "TypeError",
      /'cookiePath' must be '\/'/,
    );
    rejects(
      { cookieName: "__HOST-id", cookieSecure: true, cookieDomain: "example.com" },
      "TypeError",
      /'cookieDomain' must be unset/,
    );
    withSessions(handler, { cookieName: "__host-id", cookieSecure: true });
    withSessions(handler, { cookieName: "secure-id" });
  });

  it("rejects SameSite=None without Secure", () => {
    rejects(
      { cookieSameSite: "None" },
      "TypeError",
      /'cookieSameSite'.*unless 'cookieSecure' is true/,
    );
    withSessions(handler, { cookieSameSite: "None", cookieSecure: true });
  });

  it("enforces the __Host- and __Secure- name prefixes", () => {
    rejects(
      { cookieName: "__Secure-id" },
      "TypeError",
      /'cookieSecure' must be true for a cookie named '__Secure-/,
    );
    rejects({ cookieName: "__Host-id" }, "TypeError", /'cookieSecure' must be true/);
    rejects(
      { cookieName: "__Host-id", cookieSecure: true, cookiePath: "/app" },
      "TypeError",
      /'cookiePath' must be '\/'/,
    );
    rejects(
      { cookieName: "__Host-id", cookieSecure: true, cookieDomain: "example.com" },
      "TypeError",
      /'cookieDomain' must be unset/,
    );
    withSessions(handler, { cookieName: "__Host-id", cookieSecure: true });
  });

  it("rejects cookie names and attributes that could inject into Set-Cookie", () => {
    rejects({ cookieName: "" }, "TypeError", /'cookieName'/);
    rejects({ cookieName: "a b" }, "TypeError", /'cookieName'/);
    rejects({ cookieName: "a;b" }, "TypeError", /'cookieName'/);
    rejects({ cookiePath: "/; Domain=evil.com" }, "TypeError", /'cookiePath'/);
    rejects({ cookiePath: "relative" }, "TypeError", /'cookiePath'/);
    rejects({ cookieDomain: "example.com; Secure" }, "TypeError", /'cookieDomain'/);
    rejects({ cookieDomain: "" }, "TypeError", /'cookieDomain'/);
  });

  it("rejects non-boolean flags", () => {
    for (
      const name of ["cookieSecure", "cookieHttpOnly", "expireAtBrowserClose", "saveEveryRequest"]
    ) {
      rejects({ [name]: "yes" }, "TypeError", new RegExp(`'${name}' must be true or false`));
    }
  });

  it("rejects a short secret without showing it", () => {
    const secret = "short-but-secret";
    assert.throws(() => withSessions(handler, { secret }), (error: Error) => {
      assert.equal(error.name, "RangeError");
      assert.match(error.message, /'secret' must be at least 32 bytes long: current length is 16/);
      assert.ok(!error.message.includes(secret));
      return true;
    });
    rejects({ secret: [SECRET, "x"] }, "RangeError", /'secret\[1\]' must be at least 32 bytes/);
    rejects({ secret: [] }, "TypeError", /'secret' must be a string or a non-empty array/);
    rejects({ secret: [SECRET, 5] }, "TypeError", /'secret\[1\]' must be a string/);
    withSessions(handler, { secret: [SECRET, SECRET + "old"] });
  });

  it("counts a secret's length in bytes, not characters", () => {
    rejects({ secret: "é".repeat(15) }, "RangeError", /current length is 30/);
    withSessions(handler, { secret: "é".repeat(16) });
  });

  it("rejects a store, serializer or logger without the needed methods", () => {
    rejects({ store: {} }, "TypeError", /'store' must be a session store/);
    rejects({ serializer: { stringify: JSON.stringify } }, "TypeError", /'serializer'/);
    rejects({ logger: {} }, "TypeError", /'logger'/);
  });

  it("rejects an unknown option by name (a typo is not silently ignored)", () => {
    rejects({ cookieAgee: 10 }, "TypeError", /'cookieAgee' is not an option/);
  });

  it("rejects options that are not an object", () => {
    rejects(null, "TypeError", /options must be an object/);
  });

  it("gives the default FileStore the cookie name as its file prefix", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-options-"));
    try {
      const store = new FileStore({ path: dir });
      withSessions(handler, { store, cookieName: "sid" });
      assert.equal(store.prefix, "sid");
      const fixed = new FileStore({ path: dir, prefix: "mine_" });
      withSessions(handler, { store: fixed, cookieName: "sid" });
      assert.equal(fixed.prefix, "mine_");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects a MemoryStore bound that is not a positive whole number", () => {
    for (const maxEntries of [0, -1, 1.5, NaN]) {
      assert.throws(() => new MemoryStore({ maxEntries }), {
        name: "RangeError",
        message: /'maxEntries' must be a positive whole number/,
      });
    }
  });
});
