// Proof against real Django: the vectors Django 3.2 signed (committed in
// fixtures/django_signed_vectors.json by fixtures/django_signing.py), and a
// live cross-check in which Django signs what Tessera verifies and Tessera
// signs what Django verifies. python3-django is installed when missing.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  CookieStore,
  dumps,
  dumpsJson,
  getSession,
  loads,
  loadsJson,
  Session,
  sign,
  unsign,
  withSessions,
} from "../mod.ts";
import { RecordingLogger, sessionConfig } from "./_config.ts";
import { serve } from "./_server.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./fixtures/django_signing.py", import.meta.url));
const SESSION_SALT = "django.contrib.sessions.backends.signed_cookies";
// Long enough that the committed 2024 vectors are judged by their own expiry only.
const CENTURY = 3_155_760_000;

interface Vector {
  name: string;
  kind: "sign" | "signer" | "dumps" | "session";
  secret: string;
  salt?: string;
  value: unknown;
  compress?: boolean;
  timestamp?: number;
  expiry?: number | string;
  signed: string;
  verify: { expect: string; now?: number; max_age?: number; salt?: string };
}

const FIXTURE = JSON.parse(
  readFileSync(new URL("./fixtures/django_signed_vectors.json", import.meta.url), "utf8"),
) as { django: string; secret: string; vectors: Vector[] };
const SECRET = FIXTURE.secret;

function cookieStore(secrets: string[], cookieAge: number): {
  store: CookieStore;
  logger: RecordingLogger;
} {
  const store = new CookieStore();
  const logger = new RecordingLogger();
  store.configure({ cookieName: "sessionid", cookieAge, secrets, logger });
  return { store, logger };
}

/** The session data as Django keeps it: the custom expiry inside. */
function sessionData(vector: { value: unknown; expiry?: number | string }): unknown {
  const data = vector.value as Record<string, unknown>;
  return vector.expiry === undefined ? data : { ...data, _session_expiry: vector.expiry };
}

describe(`Django ${FIXTURE.django}'s committed vectors`, () => {
  for (const vector of FIXTURE.vectors) {
    const check = vector.verify;
    const salt = check.salt ?? vector.salt;
    const nowMs = (check.now ?? vector.timestamp ?? 0) * 1000 || Date.now();
    const options = {
      secret: SECRET,
      ...(salt === undefined ? {} : { salt }),
      ...(check.max_age === undefined ? {} : { maxAge: check.max_age }),
      now: nowMs,
    };

    if (vector.kind === "session") {
      it(`${vector.name}: CookieStore finds it ${check.expect}`, async () => {
        const { store, logger } = cookieStore([SECRET], CENTURY);
        const loaded = await store.load(vector.signed);
        if (check.expect !== "ok") {
          assert.equal(loaded, null);
          assert.match(
            logger.warnings[0]!,
            check.expect === "expired" ? /expired/ : /signature matches no secret/,
          );
          return;
        }
        assert.deepEqual(JSON.parse(loaded!.data), sessionData(vector));
        const expiry = vector.expiry;
        const expected = typeof expiry === "string"
          ? Date.parse(expiry)
          : (vector.timestamp! + (expiry || CENTURY)) * 1000;
        assert.equal(loaded!.expiresAt, expected);
        const session = new Session(vector.signed, sessionConfig(store, { cookieAge: CENTURY }));
        await session.load();
        assert.deepEqual(Object.fromEntries(session.items()), vector.value);
      });
      if (check.expect === "ok") {
        it(`${vector.name}: Tessera signs the same session data the same way`, async () => {
          const ours = await dumpsJson(JSON.stringify(sessionData(vector)), {
            secret: vector.secret,
            salt: SESSION_SALT,
            compress: true,
            now: vector.timestamp! * 1000,
          });
          await assertSameSigning(ours, vector.signed, { secret: SECRET, salt: SESSION_SALT });
        });
      }
      continue;
    }

    const timestamp = vector.kind !== "signer";
    it(`${vector.name}: Tessera finds it ${check.expect}`, async () => {
      const read = vector.kind === "dumps"
        ? loads(vector.signed, options)
        : unsign(vector.signed, { ...options, timestamp });
      if (check.expect === "ok") assert.deepEqual(await read, vector.value);
      else await assert.rejects(read, { name: `${check.expect}Error` });
    });
    if (check.expect === "ok") {
      it(`${vector.name}: Tessera signs it the same way`, async () => {
        const signOptions = {
          secret: vector.secret,
          ...(vector.salt === undefined ? {} : { salt: vector.salt }),
          now: (vector.timestamp ?? 0) * 1000,
        };
        if (vector.kind === "dumps") {
          const ours = await dumps(vector.value, {
            ...signOptions,
            compress: vector.compress ?? false,
          });
          await assertSameSigning(ours, vector.signed, {
            secret: SECRET,
            salt: vector.salt ?? "django.core.signing",
          });
        } else {
          assert.equal(
            await sign(vector.value as string, { ...signOptions, timestamp }),
            vector.signed,
          );
        }
      });
    }
  }
});

/**
 * Uncompressed, Tessera's output is Django's, byte for byte. Compressed,
 * zlib builds may deflate differently (Python's zlib and the runtimes' differ
 * by a few bytes), so both must be compressed, signed at the same second,
 * and carry the same JSON text.
 */
async function assertSameSigning(
  ours: string,
  django: string,
  options: { secret: string; salt: string },
): Promise<void> {
  if (!django.startsWith(".")) {
    assert.equal(ours, django);
    return;
  }
  assert.ok(ours.startsWith("."), "compressed as Django compressed it");
  const [mine, theirs] = await Promise.all([loadsJson(ours, options), loadsJson(django, options)]);
  assert.equal(mine.json, theirs.json);
  assert.equal(mine.timestamp, theirs.timestamp);
}

// --- live cross-check --------------------------------------------------------

const OTHER_SECRET = "another-secret-that-django-and-tessera-do-not-share";
const OLD_SECRET = "the-secret-before-rotation-of-at-least-32-bytes";
const UNICODE = {
  name: "Zoë",
  combining: "he\u0301llo",
  emoji: "\u{1F40D}",
  zh: "你好",
  controls: "tab\t newline\n del\x7f",
  separators: "\u2028\u2029",
};
const BIG = {
  cart: Array.from({ length: 60 }, (_, i) => ({ sku: `item-${i}`, qty: i % 4 })),
  user: 42,
};

interface Case {
  name: string;
  kind: "sign" | "dumps" | "session";
  secret: string;
  value: unknown;
  compress?: boolean;
  timestamp?: number;
  expiry?: number;
  max_age?: number;
  signed?: string;
}
interface Outcome {
  name: string;
  ok: boolean;
  value?: unknown;
  error?: string;
  expiry_age?: unknown;
}

function hasDjango(): boolean {
  return spawnSync(PYTHON, ["-c", "import django"], { stdio: "ignore", timeout: 60_000 })
    .status === 0;
}

// CI runs as root on Debian; apt waits for a lock another installer holds.
function installDjango(): void {
  const apt = (args: string[]) =>
    spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
      stdio: "inherit",
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  apt(["install", "-y", "-qq", "python3-django"]);
  if (hasDjango()) return;
  apt(["update", "-qq"]);
  apt(["install", "-y", "-qq", "python3-django"]);
  if (!hasDjango()) {
    throw new Error(
      "Cannot run the Django cross-check as python3-django is missing and 'apt-get install -y python3-django' failed: install Django 3.2 or later for /usr/bin/python3",
    );
  }
}

function django<T>(command: "sign" | "verify", cases: unknown[]): T[] {
  const result = spawnSync(PYTHON, [SCRIPT, command], {
    input: JSON.stringify(cases),
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.status !== 0) {
    throw new Error(`${SCRIPT} ${command} failed (${result.status}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as T[];
}

describe("live cross-check with Django", () => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  // Django signs these; Tessera verifies them.
  const fromDjango: Case[] = [
    { name: "sign: TimestampSigner", kind: "sign", secret: SECRET, value: "hello:world" },
    { name: "dumps: plain", kind: "dumps", secret: SECRET, value: { user: 42, name: "ada" } },
    { name: "dumps: compressed", kind: "dumps", secret: SECRET, value: BIG, compress: true },
    { name: "dumps: unicode", kind: "dumps", secret: SECRET, value: UNICODE },
    {
      name: "dumps: unicode, compressed",
      kind: "dumps",
      secret: SECRET,
      value: { text: "你好".repeat(80), emoji: "\u{1F40D}" },
      compress: true,
    },
    {
      name: "dumps: expired",
      kind: "dumps",
      secret: SECRET,
      value: "stale",
      timestamp: nowSeconds - 3600,
    },
    { name: "dumps: wrong secret", kind: "dumps", secret: OTHER_SECRET, value: { a: 1 } },
    { name: "session: plain", kind: "session", secret: SECRET, value: { visits: 41, u: "ada" } },
    { name: "session: unicode", kind: "session", secret: SECRET, value: UNICODE },
    { name: "session: compressed", kind: "session", secret: SECRET, value: BIG },
    {
      name: "session: set_expiry(300)",
      kind: "session",
      secret: SECRET,
      value: { a: 1 },
      expiry: 300,
    },
    {
      name: "session: set_expiry(-10)",
      kind: "session",
      secret: SECRET,
      value: { a: 1 },
      expiry: -10,
    },
    { name: "session: old secret", kind: "session", secret: OLD_SECRET, value: { a: 1 } },
    { name: "session: wrong secret", kind: "session", secret: OTHER_SECRET, value: { a: 1 } },
  ];
  const signedByDjango = new Map<string, Case>();
  // Tessera signs these; Django verifies them.
  const fromTessera: Case[] = [];
  const djangoOutcomes = new Map<string, Outcome>();
  let closeServer: (() => Promise<void>) | null = null;
  after(async () => {
    await closeServer?.();
  });

  before(async () => {
    if (!hasDjango()) installDjango();
    for (const signed of django<Case>("sign", fromDjango)) signedByDjango.set(signed.name, signed);

    const add = (entry: Case) => fromTessera.push(entry);
    add({
      name: "sign: TimestampSigner",
      kind: "sign",
      secret: SECRET,
      value: "hello:world",
      signed: await sign("hello:world", { secret: SECRET }),
    });
    for (
      const [name, value, compress] of [
        ["dumps: plain", { user: 42, name: "ada" }, false],
        ["dumps: compressed", BIG, true],
        ["dumps: unicode", UNICODE, false],
        ["dumps: unicode, compressed", { text: "你好".repeat(80), emoji: "\u{1F40D}" }, true],
      ] as const
    ) {
      const signed = await dumps(value, { secret: SECRET, compress });
      if (compress) assert.ok(signed.startsWith("."), `${name} is compressed`);
      add({ name, kind: "dumps", secret: SECRET, value, signed });
    }
    add({
      name: "dumps: expired",
      kind: "dumps",
      secret: SECRET,
      value: "stale",
      max_age: 60,
      signed: await dumps("stale", { secret: SECRET, now: Date.now() - 3_600_000 }),
    });
    add({
      name: "dumps: wrong secret",
      kind: "dumps",
      secret: SECRET,
      value: { a: 1 },
      signed: await dumps({ a: 1 }, { secret: OTHER_SECRET }),
    });

    const { store } = cookieStore([SECRET], 1_209_600);
    for (
      const [name, value, expiry] of [
        ["session: plain", { visits: 41, u: "ada" }, null],
        ["session: unicode", UNICODE, null],
        ["session: compressed", BIG, null],
        ["session: set_expiry(300)", { a: 1 }, 300],
      ] as const
    ) {
      const session = new Session(null, sessionConfig(store));
      session.update(value);
      if (expiry !== null) session.setExpiry(expiry);
      await session.save();
      add({ name, kind: "session", secret: SECRET, value, signed: session.sessionKey! });
    }

    // A Tessera server takes Django's session cookie and answers with its own.
    const server = serve(
      withSessions(async (req) => {
        const session = await getSession<{ visits: number }>(req);
        session.set("visits", (session.get("visits") ?? 0) + 1);
        return new Response(String(session.get("visits")));
      }, { store: new CookieStore(), secret: SECRET, logger: new RecordingLogger() }),
    );
    closeServer = server.close;
    const response = await fetch(server.url, {
      headers: { cookie: `sessionid=${signedByDjango.get("session: plain")!.signed}` },
    });
    assert.equal(await response.text(), "42");
    const setCookie = response.headers.get("set-cookie")!;
    add({
      name: "session: set by a Tessera server",
      kind: "session",
      secret: SECRET,
      value: { visits: 42, u: "ada" },
      signed: setCookie.slice("sessionid=".length, setCookie.indexOf(";")),
    });

    for (const outcome of django<Outcome>("verify", fromTessera)) {
      djangoOutcomes.set(outcome.name, outcome);
    }
  });

  describe("Django signs, Tessera verifies", () => {
    function signed(name: string): Case {
      const entry = signedByDjango.get(name);
      assert.ok(entry?.signed, `Django signed '${name}'`);
      return entry;
    }

    it("sign: TimestampSigner", async () => {
      assert.equal(
        await unsign(signed("sign: TimestampSigner").signed!, { secret: SECRET }),
        "hello:world",
      );
    });

    for (const name of ["dumps: plain", "dumps: unicode"]) {
      it(name, async () => {
        const entry = signed(name);
        assert.equal(entry.signed!.startsWith("."), false);
        assert.deepEqual(await loads(entry.signed!, { secret: SECRET, maxAge: 60 }), entry.value);
      });
    }

    for (const name of ["dumps: compressed", "dumps: unicode, compressed"]) {
      it(name, async () => {
        const entry = signed(name);
        assert.ok(entry.signed!.startsWith("."));
        assert.deepEqual(await loads(entry.signed!, { secret: SECRET, maxAge: 60 }), entry.value);
      });
    }

    it("dumps: expired", async () => {
      const entry = signed("dumps: expired");
      await assert.rejects(loads(entry.signed!, { secret: SECRET, maxAge: 60 }), {
        name: "SignatureExpiredError",
      });
      assert.equal(await loads(entry.signed!, { secret: SECRET, maxAge: 7200 }), "stale");
    });

    it("dumps: wrong secret", async () => {
      await assert.rejects(loads(signed("dumps: wrong secret").signed!, { secret: SECRET }), {
        name: "BadSignatureError",
      });
    });

    for (const name of ["session: plain", "session: unicode", "session: compressed"]) {
      it(name, async () => {
        const entry = signed(name);
        const { store } = cookieStore([SECRET], 1_209_600);
        const session = new Session(entry.signed!, sessionConfig(store));
        await session.load();
        assert.deepEqual(Object.fromEntries(session.items()), entry.value);
      });
    }

    it("session: set_expiry(300) is kept, counted from the signing", async () => {
      const entry = signed("session: set_expiry(300)");
      const { store } = cookieStore([SECRET], 1_209_600);
      const loaded = await store.load(entry.signed!);
      const { timestamp } = await loadsJson(entry.signed!, { secret: SECRET, salt: SESSION_SALT });
      assert.equal(loaded!.expiresAt, (timestamp! + 300) * 1000);
      const session = new Session(entry.signed!, sessionConfig(store));
      await session.load();
      assert.equal(session.getExpiryAge(), 300);
    });

    it("session: set_expiry(-10) is refused, where Django would load it (#19201)", async () => {
      const { store, logger } = cookieStore([SECRET], 1_209_600);
      assert.equal(await store.load(signed("session: set_expiry(-10)").signed!), null);
      assert.match(logger.warnings[0]!, /expired/);
    });

    it("session: old secret loads while listed, and is marked for re-signing", async () => {
      const { store } = cookieStore([SECRET, OLD_SECRET], 1_209_600);
      const loaded = await store.load(signed("session: old secret").signed!);
      assert.equal(loaded!.refresh, true);
      assert.deepEqual(JSON.parse(loaded!.data), { a: 1 });
    });

    it("session: wrong secret", async () => {
      const { store, logger } = cookieStore([SECRET], 1_209_600);
      assert.equal(await store.load(signed("session: wrong secret").signed!), null);
      assert.match(logger.warnings[0]!, /signature matches no secret/);
    });
  });

  describe("Tessera signs, Django verifies", () => {
    function outcome(name: string): Outcome {
      const found = djangoOutcomes.get(name);
      assert.ok(found, `Django verified '${name}'`);
      return found;
    }
    const expected = (name: string) => fromTessera.find((entry) => entry.name === name)!.value;

    for (
      const name of [
        "sign: TimestampSigner",
        "dumps: plain",
        "dumps: compressed",
        "dumps: unicode",
        "dumps: unicode, compressed",
        "session: plain",
        "session: unicode",
        "session: compressed",
        "session: set by a Tessera server",
      ]
    ) {
      it(name, () => {
        const found = outcome(name);
        assert.equal(found.ok, true, found.error);
        assert.deepEqual(found.value, expected(name));
      });
    }

    it("session: setExpiry(300) reaches Django as set_expiry(300)", () => {
      const found = outcome("session: set_expiry(300)");
      assert.equal(found.ok, true, found.error);
      assert.deepEqual(found.value, { a: 1, _session_expiry: 300 });
      assert.equal(found.expiry_age, 300);
    });

    it("dumps: expired", () => {
      assert.deepEqual(outcome("dumps: expired"), {
        name: "dumps: expired",
        ok: false,
        error: "SignatureExpired",
      });
    });

    it("dumps: wrong secret", () => {
      assert.deepEqual(outcome("dumps: wrong secret"), {
        name: "dumps: wrong secret",
        ok: false,
        error: "BadSignature",
      });
    });
  });
});
