// The behaviour every engine shares: the SessionStore contract, and Django's
// engine-independent session tests (reference catalogue 2.1) run through a
// Session on that engine. A new engine adds one line: storeContract(...).

import { after, describe, it as test } from "node:test";
import assert from "node:assert/strict";
import {
  Session,
  type SessionConfig,
  SessionExistsError,
  SessionInterruptedError,
  type SessionStore,
} from "../../mod.ts";
import { RecordingLogger, sessionConfig } from "../_config.ts";

/** Makes a fresh, empty store for one test; `cleanup` runs after the suite. */
export type StoreFactory = () => { store: SessionStore; cleanup?: () => void | Promise<void> };

const HOUR = 3_600_000;

/**
 * Registers the contract for a store. `replaced` names the cases (by a
 * part of their title) that a store in another record format answers
 * differently on purpose, each tested in its own file instead.
 */
export function storeContract(
  name: string,
  factory: StoreFactory,
  replaced: readonly string[] = [],
): void {
  const it = (title: string, body: () => Promise<void> | void) =>
    replaced.some((part) => title.includes(part)) ? undefined : test(title, body);
  const cleanups: (() => void | Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });
  function fresh(): SessionStore {
    const { store, cleanup } = factory();
    if (cleanup) cleanups.push(cleanup);
    return store;
  }
  function session(
    store: SessionStore,
    key: string | null = null,
    overrides: Partial<SessionConfig> = {},
  ): Session {
    return new Session(key, sessionConfig(store, overrides));
  }
  async function saved(store: SessionStore, data: Record<string, unknown>): Promise<Session> {
    const s = session(store);
    s.update(data);
    await s.save();
    return s;
  }

  describe(`${name}: the SessionStore contract`, () => {
    it("create() returns a fresh 32-character key whose record load() returns", async () => {
      const store = fresh();
      const record = { data: '{"a":1}', expiresAt: Date.now() + HOUR };
      const key = await store.create(record);
      assert.match(key, /^[a-z0-9]{32}$/);
      assert.deepEqual(await store.load(key), record);
      assert.notEqual(await store.create(record), key);
    });

    it("save() with mustCreate rejects a taken key with SessionExistsError", async () => {
      const store = fresh();
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      await assert.rejects(
        store.save(key, { data: '{"b":2}', expiresAt: Date.now() + HOUR }, true),
        SessionExistsError,
      );
      assert.equal((await store.load(key))?.data, "{}");
    });

    it("save() of a record that is gone rejects with SessionInterruptedError and stores nothing", async () => {
      const store = fresh();
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      await store.delete(key);
      await assert.rejects(
        store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }),
        SessionInterruptedError,
      );
      assert.equal(await store.exists(key), false);
    });

    it("save() replaces the record and returns the key", async () => {
      const store = fresh();
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      const expiresAt = Date.now() + 2 * HOUR;
      assert.equal(await store.save(key, { data: '{"n":2}', expiresAt }), key);
      assert.deepEqual(await store.load(key), { data: '{"n":2}', expiresAt });
    });

    it("load() of an expired record gives null", async () => {
      const store = fresh();
      const key = await store.create({ data: "{}", expiresAt: Date.now() - 1000 });
      assert.equal(await store.load(key), null);
    });

    it("exists() and delete() follow the record; deleting an unknown key is no error", async () => {
      const store = fresh();
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      assert.equal(await store.exists(key), true);
      await store.delete(key);
      assert.equal(await store.exists(key), false);
      await store.delete(key);
      await store.delete("neverexisted123");
    });

    it("answers malformed and hostile keys with null and false, never an error", async () => {
      const store = fresh();
      for (
        const key of [
          "",
          "short",
          "../../../../etc/passwd",
          "a/b/c/d/e/f",
          "a\\b\\c\\d\\e",
          "x".repeat(1240),
          "abc\u0000defghijk",
          "ABCDEFGHIJKLMNOP",
        ]
      ) {
        assert.equal(await store.load(key), null, JSON.stringify(key));
        assert.equal(await store.exists(key), false);
        await store.delete(key);
      }
    });

    it("clearExpired() removes expired records only and counts them", async () => {
      const store = fresh();
      const live = await store.create({ data: '{"live":1}', expiresAt: Date.now() + HOUR });
      const expired = [
        await store.create({ data: "{}", expiresAt: Date.now() - HOUR }),
        await store.create({ data: "{}", expiresAt: Date.now() - 1 }),
      ];
      // A store whose records expire by themselves has nothing left to sweep.
      assert.equal(await store.clearExpired(), store.expiresOnItsOwn ? 0 : 2);
      for (const key of expired) assert.equal(await store.exists(key), false);
      assert.equal((await store.load(live))?.data, '{"live":1}');
      assert.equal(await store.clearExpired(), 0);
    });
  });

  describe(`${name}: Django's session behaviour`, () => {
    it("a new session is neither accessed nor modified (test_new_session)", () => {
      const s = session(fresh());
      assert.equal(s.accessed, false);
      assert.equal(s.modified, false);
    });

    it("get() of a missing key gives undefined (test_get_empty)", () => {
      assert.equal(session(fresh()).get("cat"), undefined);
    });

    it("set() marks modified and pop() returns the value (test_store)", () => {
      const s = session(fresh());
      s.set("cat", "dog");
      assert.equal(s.modified, true);
      assert.equal(s.pop("cat"), "dog");
    });

    it("pop() of a present key removes it and marks accessed and modified (test_pop)", () => {
      const s = session(fresh());
      s.set("some key", "exists");
      s.accessed = false;
      s.modified = false;
      assert.equal(s.pop("some key"), "exists");
      assert.equal(s.accessed, true);
      assert.equal(s.modified, true);
      assert.equal(s.get("some key"), undefined);
    });

    it("pop() of a missing key gives the fallback and does not modify (test_pop_default)", () => {
      const s = session(fresh());
      assert.equal(s.pop("some key", "does not exist"), "does not exist");
      assert.equal(s.accessed, true);
      assert.equal(s.modified, false);
    });

    it("pop() of a missing key without fallback gives undefined (Django raises KeyError)", () => {
      assert.equal(session(fresh()).pop("some key"), undefined);
    });

    it("setDefault() inserts once and returns the stored value (test_setdefault)", () => {
      const s = session(fresh());
      assert.equal(s.setDefault("foo", "bar"), "bar");
      assert.equal(s.setDefault("foo", "baz"), "bar");
      assert.equal(s.accessed, true);
      assert.equal(s.modified, true);
    });

    it("setDefault() of a present key does not modify", () => {
      const s = session(fresh());
      s.set("foo", "bar");
      s.modified = false;
      s.setDefault("foo", "baz");
      assert.equal(s.modified, false);
    });

    it("update() marks accessed and modified, even when empty (test_update)", () => {
      const s = session(fresh());
      s.update({ "update key": 1 });
      assert.equal(s.accessed, true);
      assert.equal(s.modified, true);
      assert.equal(s.get("update key"), 1);
      const t = session(fresh());
      t.update({});
      assert.equal(t.modified, true);
    });

    it("has() marks accessed, not modified (test_has_key)", () => {
      const s = session(fresh());
      s.set("some key", 1);
      s.modified = false;
      s.accessed = false;
      assert.equal(s.has("some key"), true);
      assert.equal(s.accessed, true);
      assert.equal(s.modified, false);
    });

    it("values(), keys() and items() read without modifying (test_values, test_keys, test_items)", () => {
      const s = session(fresh());
      assert.deepEqual(s.values(), []);
      assert.equal(s.accessed, true);
      s.set("x", 1);
      s.modified = false;
      s.accessed = false;
      assert.deepEqual(s.values(), [1]);
      assert.deepEqual(s.keys(), ["x"]);
      assert.deepEqual(s.items(), [["x", 1]]);
      assert.equal(s.accessed, true);
      assert.equal(s.modified, false);
    });

    it("clear() empties the data and marks accessed and modified (test_clear)", () => {
      const s = session(fresh());
      s.set("x", 1);
      s.modified = false;
      s.accessed = false;
      s.clear();
      assert.deepEqual(s.items(), []);
      assert.equal(s.accessed, true);
      assert.equal(s.modified, true);
    });

    it("delete() marks modified only when the key existed", () => {
      const s = session(fresh());
      s.delete("absent");
      assert.equal(s.modified, false);
      s.set("x", 1);
      s.modified = false;
      s.delete("x");
      assert.equal(s.modified, true);
      assert.equal(s.has("x"), false);
    });

    it("save() stores the session under its key (test_save)", async () => {
      const store = fresh();
      const s = await saved(store, { x: 1 });
      assert.equal(await store.exists(s.sessionKey!), true);
    });

    it("a saved session can be deleted from the store (test_delete)", async () => {
      const store = fresh();
      const s = await saved(store, { x: 1 });
      await store.delete(s.sessionKey!);
      assert.equal(await store.exists(s.sessionKey!), false);
    });

    it("flush() removes the record, drops the key, marks accessed and modified (test_flush)", async () => {
      const store = fresh();
      const s = await saved(store, { foo: "bar" });
      const key = s.sessionKey!;
      s.accessed = false;
      s.modified = false;
      await s.flush();
      assert.equal(await store.exists(key), false);
      assert.equal(s.sessionKey, null);
      assert.equal(s.accessed, true);
      assert.equal(s.modified, true);
      assert.equal(s.get("foo"), undefined);
    });

    it("cycleKey() moves the data to a new key and removes the old (test_cycle)", async () => {
      const store = fresh();
      const s = await saved(store, { a: "c", b: "d" });
      const oldKey = s.sessionKey!;
      await s.cycleKey();
      assert.notEqual(s.sessionKey, oldKey);
      assert.equal(await store.exists(oldKey), false);
      assert.deepEqual(s.items(), [["a", "c"], ["b", "d"]]);
      const reloaded = session(store, s.sessionKey);
      await reloaded.load();
      assert.deepEqual(reloaded.items(), [["a", "c"], ["b", "d"]]);
    });

    it("cycleKey() on a session not loaded yet keeps the data (test_cycle_with_no_session_cache)", async () => {
      const store = fresh();
      const first = await saved(store, { data: "test" });
      const s = session(store, first.sessionKey);
      await s.cycleKey();
      assert.equal(s.get("data"), "test");
    });

    it("save() keeps the data (test_save_doesnt_clear_data)", async () => {
      const s = await saved(fresh(), { a: "b" });
      assert.equal(s.get("a"), "b");
    });

    it("an invalid key gets a new key on save and sees no data (test_invalid_key)", async () => {
      const store = fresh();
      const s = session(store, "1");
      await s.load();
      assert.equal(s.get("cat"), undefined);
      s.set("cat", "dog");
      await s.save();
      assert.match(s.sessionKey!, /^[a-z0-9]{32}$/);
    });

    it("keys shorter than 8 characters count as none; 8 is kept (tests 41-43)", () => {
      const store = fresh();
      assert.equal(session(store, "").sessionKey, null);
      assert.equal(session(store, "1234567").sessionKey, null);
      assert.equal(session(store, "12345678").sessionKey, "12345678");
    });

    it("sessionKey is read-only (test_session_key_is_read_only)", () => {
      const s = session(fresh());
      assert.throws(() => {
        (s as unknown as { sessionKey: string }).sessionKey = "a".repeat(32);
      }, TypeError);
    });

    it("the default expiry age is cookieAge, also after setExpiry(0) (test_default_expiry)", () => {
      const s = session(fresh());
      assert.equal(s.getExpiryAge(), 1_209_600);
      s.setExpiry(0);
      assert.equal(s.getExpiryAge(), 1_209_600);
    });

    it("setExpiry(seconds) gives date = modification + seconds (test_custom_expiry_seconds)", () => {
      const modification = new Date("2030-05-01T12:00:00Z");
      const s = session(fresh());
      s.setExpiry(10);
      assert.deepEqual(s.getExpiryDate({ modification }), new Date("2030-05-01T12:00:10Z"));
      assert.equal(s.getExpiryAge({ modification }), 10);
    });

    it("setExpiry(a date) round-trips through the store (test_custom_expiry_datetime)", async () => {
      const store = fresh();
      const expiry = new Date(Date.now() + 10_000);
      const s = session(store);
      s.setExpiry(expiry);
      await s.save();
      const reloaded = session(store, s.sessionKey);
      await reloaded.load();
      assert.equal(reloaded.getExpiryDate().getTime(), expiry.getTime());
      const modification = new Date(expiry.getTime() - 10_000);
      assert.equal(reloaded.getExpiryAge({ modification }), 10);
    });

    it("setExpiry(null) returns to the default (test_custom_expiry_reset)", () => {
      const s = session(fresh());
      s.setExpiry(null);
      s.setExpiry(10);
      s.setExpiry(null);
      assert.equal(s.getExpiryAge(), 1_209_600);
    });

    it("getExpireAtBrowserClose() follows 10 / 0 / null under both settings (test_get_expire_at_browser_close)", () => {
      for (const setting of [false, true]) {
        const s = session(fresh(), null, { expireAtBrowserClose: setting });
        s.setExpiry(10);
        assert.equal(s.getExpireAtBrowserClose(), false);
        s.setExpiry(0);
        assert.equal(s.getExpireAtBrowserClose(), true);
        s.setExpiry(null);
        assert.equal(s.getExpireAtBrowserClose(), setting);
      }
    });

    it("setExpiry() rejects what is not seconds, a Date or null", () => {
      const s = session(fresh());
      assert.throws(() => s.setExpiry(1.5), TypeError);
      assert.throws(() => s.setExpiry("10" as never), TypeError);
      assert.throws(() => s.setExpiry(new Date("nonsense")), RangeError);
    });

    it("the expiry setting persists with the session (after setExpiry(10), a later load sees 10)", async () => {
      const store = fresh();
      const s = session(store);
      s.set("x", 1);
      s.setExpiry(10);
      await s.save();
      const reloaded = session(store, s.sessionKey);
      await reloaded.load();
      assert.equal(reloaded.getExpiryAge(), 10);
      assert.deepEqual(reloaded.keys(), ["x"]);
    });

    it("server-side expiry: seconds count from the save, no setting means cookieAge", async () => {
      const store = fresh();
      const custom = session(store);
      custom.set("x", 1);
      custom.setExpiry(10);
      const before = Date.now();
      await custom.save();
      const customRecord = await store.load(custom.sessionKey!);
      assert.ok(
        customRecord!.expiresAt >= before + 10_000 &&
          customRecord!.expiresAt <= Date.now() + 10_000,
      );
      const plain = await saved(store, { x: 1 });
      const plainRecord = await store.load(plain.sessionKey!);
      assert.ok(Math.abs(plainRecord!.expiresAt - (Date.now() + 1_209_600_000)) < 5000);
    });

    it("data round-trips through the store, unicode included (test_decode)", async () => {
      const store = fresh();
      const data = { a: "tëst ✓ \u2028 😀", b: [1, { c: null }], ["__proto__"]: "own key" };
      const s = session(store);
      s.update(data as never);
      await s.save();
      const reloaded = session(store, s.sessionKey);
      await reloaded.load();
      assert.equal(reloaded.get("a"), data.a);
      assert.deepEqual(reloaded.get("b"), data.b);
      assert.equal(reloaded.get("__proto__"), "own key");
      assert.equal(reloaded.get("constructor"), undefined);
    });

    it("corrupt stored data gives an empty session, no key, and a logged warning (test_decode_failure_logged_to_security)", async () => {
      const store = fresh();
      for (const data of ["bad:encoded:value", "{not json", "[1,2]", ""]) {
        const key = await store.create({ data, expiresAt: Date.now() + HOUR });
        const logger = new RecordingLogger();
        const s = session(store, key, { logger });
        await s.load();
        assert.deepEqual(s.items(), [], data);
        assert.equal(s.sessionKey, null);
        assert.equal(logger.warnings.length, 1);
        assert.match(logger.warnings[0]!, /Session data corrupted/);
        assert.ok(!logger.warnings[0]!.includes(key));
      }
    });

    it("an expiry in the past hides the data from a later load (test_actual_expiry)", async () => {
      const store = fresh();
      const s = session(store);
      s.set("foo", "bar");
      s.setExpiry(-10);
      await s.save();
      const reloaded = session(store, s.sessionKey);
      await reloaded.load();
      assert.equal(reloaded.has("foo"), false);
      assert.equal(reloaded.sessionKey, null);
    });

    it("loading an unknown key creates no record and drops the key (test_session_load_does_not_create_record)", async () => {
      const store = fresh();
      const forged = "someunknownkey1234567890abcdefgh";
      const s = session(store, forged);
      await s.load();
      assert.equal(s.sessionKey, null);
      assert.equal(await store.exists(forged), false);
      s.set("x", 1);
      await s.save();
      assert.notEqual(s.sessionKey, forged);
      assert.equal(await store.exists(forged), false);
    });

    it("a save never brings back a session deleted elsewhere (test_session_save_does_not_resurrect_session_logged_out_in_other_context)", async () => {
      const store = fresh();
      const s1 = await saved(store, { logged_in: true });
      const s2 = session(store, s1.sessionKey);
      await s2.load();
      await s2.flush();
      s1.set("x", 2);
      await assert.rejects(s1.save(), SessionInterruptedError);
      const s3 = session(store, s1.sessionKey);
      await s3.load();
      assert.deepEqual(s3.items(), []);
    });

    it("a session is empty with no key and no data, and not empty with an expiry set", () => {
      const s = session(fresh());
      assert.equal(s.isEmpty(), true);
      s.setExpiry(60);
      assert.equal(s.isEmpty(), false);
      s.clear();
      assert.equal(s.isEmpty(), true);
    });

    it("the test-cookie helpers store, check and delete Django's value (test_test_cookie)", () => {
      const s = session(fresh());
      assert.equal(s.has("testcookie"), false);
      s.setTestCookie();
      assert.equal(s.testCookieWorked(), true);
      s.deleteTestCookie();
      assert.equal(s.testCookieWorked(), false);
      s.deleteTestCookie();
    });

    it("set() rejects values JSON cannot hold, and the reserved expiry key", () => {
      const s = session(fresh());
      assert.throws(() => s.set("f", (() => 1) as never), TypeError);
      assert.throws(() => s.set("_session_expiry", 10 as never), {
        name: "TypeError",
        message: /setExpiry/,
      });
      assert.throws(() => s.update({ ok: 1, bad: undefined }), TypeError);
      assert.equal(s.has("ok"), false, "update() stores nothing when a value is rejected");
      assert.equal(s.modified, false);
    });

    it("reading a session made from a key before load() fails with a clear error", () => {
      const s = session(fresh(), "abcdefgh12345678");
      assert.throws(() => s.get("x"), /await getSession\(req\)/);
    });
  });
}
