// What an attacker controls, as fast-check arbitraries: Cookie headers,
// session cookie values, keys handed to a store, and the bytes of a stored
// session. Known keys are fixed strings, so that a seed replays a failure
// exactly.

import fc from "fast-check";
import process from "node:process";
import type { Session } from "../../mod.ts";

/** The seed of every property; set TESSERA_FUZZ_SEED to replay another run. */
export const SEED: number = Number(process.env.TESSERA_FUZZ_SEED ?? 20_240_607);

/** Cases per property (TESSERA_FUZZ_RUNS overrides, e.g. for a long local run). */
export function runs(fallback: number): number {
  return Number(process.env.TESSERA_FUZZ_RUNS ?? fallback);
}

function key(label: string, index: number): string {
  return `${label}${index}`.padEnd(32, String(index));
}

/** Sessions the test stores before the run: the only keys that may be adopted. */
export const LIVE_KEYS: readonly string[] = [0, 1, 2, 3].map((i) => key("live", i));
/** Stored, but past their expiry. */
export const EXPIRED_KEYS: readonly string[] = [0, 1].map((i) => key("expired", i));
/** Stored with data that is not a session. */
export const CORRUPT_KEYS: readonly string[] = [0, 1].map((i) => key("corrupt", i));
/** A session file planted outside the store's directory, for a path that escapes it. */
export const DECOY_KEY: string = key("decoy", 0);

const KNOWN_KEYS = [...LIVE_KEYS, ...EXPIRED_KEYS, ...CORRUPT_KEYS, DECOY_KEY];

const char = (min: number, max: number) =>
  fc.integer({ min, max }).map((code) => String.fromCharCode(code));

/**
 * One character a Cookie header can carry through `Headers`: printable
 * ASCII, the separators cookie parsers trip on, tab, and obs-text bytes.
 */
export const headerChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: char(0x20, 0x7e) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(";", "=", '"', ",", " ", "\\", "/", ".", "%", "\t", "$"),
  },
  { weight: 1, arbitrary: char(0x80, 0xff) },
);

function headerText(maxLength: number, minLength = 0): fc.Arbitrary<string> {
  return fc.string({ unit: headerChar, minLength, maxLength });
}

/** A known key, changed the way a forger would try. */
const mutatedKey: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom(...KNOWN_KEYS),
  fc.nat(40),
  headerText(3, 1),
  fc.constantFrom(
    "upper",
    "truncate",
    "append",
    "prepend",
    "insert",
    "quote",
    "escape",
    "traverse",
    "encode",
  ),
).map(([known, at, extra, how]) => {
  const cut = at % (known.length + 1);
  switch (how) {
    case "upper":
      return known.toUpperCase();
    case "truncate":
      return known.slice(0, cut);
    case "append":
      return known + extra;
    case "prepend":
      return extra + known;
    case "insert":
      return known.slice(0, cut) + extra + known.slice(cut);
    case "quote":
      return `"${known}"`;
    case "escape":
      return `"${known}\\"`;
    case "traverse":
      return `../${known}`;
    default:
      return encodeURIComponent(`../../${known}`);
  }
});

/** A value for the session cookie. */
export const sessionValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_KEYS) },
  { weight: 3, arbitrary: mutatedKey },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9]{8,40}$/) },
  { weight: 3, arbitrary: headerText(60) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      '""',
      "../../../../etc/passwd",
      `../sessionid${DECOY_KEY}`,
      `..%2Fsessionid${DECOY_KEY}`,
      // Appended to a file prefix, these climb one, two and three levels.
      `/../../sessionid${DECOY_KEY}`,
      `/../../../sessionid${DECOY_KEY}`,
      `/../../../../sessionid${DECOY_KEY}`,
      "/../../decoy",
      "/etc/passwd",
      "..\\..\\windows",
      ".",
      "..",
      "sessionid",
      "null",
      "undefined",
      "__proto__",
      "constructor",
    ),
  },
  { weight: 1, arbitrary: headerText(5000, 4000) },
);

/** A cookie name: the session cookie's, near misses, or anything. */
const cookieName: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant("sessionid") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "SESSIONID",
      "sessionid ",
      " sessionid",
      "sessionid\t",
      "session",
      "sessionidx",
      "xsessionid",
      '"sessionid"',
      "__Host-sessionid",
    ),
  },
  { weight: 1, arbitrary: headerText(12) },
);

/** One piece of a Cookie header: a name=value pair or raw text. */
const cookiePart: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(cookieName, sessionValue).map(([n, v]) => `${n}=${v}`) },
  { weight: 1, arbitrary: headerText(30) },
);

/** A whole Cookie header, with the separators browsers and forgers use. */
export const cookieHeader: fc.Arbitrary<string> = fc.tuple(
  fc.array(cookiePart, { maxLength: 5 }),
  fc.array(fc.constantFrom("; ", ";", " ; ", ",", ";;", "; ;", " ", ";\t"), {
    minLength: 5,
    maxLength: 5,
  }),
).map(([parts, separators]) =>
  parts.reduce((header, part, i) => (i === 0 ? part : header + separators[i]! + part), "")
);

/** Any string a caller might hand a store as a key, hostile ones first. */
export const storeKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: sessionValue },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.array(fc.constantFrom("../", "..\\", "/", "./", "\0", "%2e%2e%2f", "~", ".."), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.constantFrom(
        `sessionid${DECOY_KEY}`,
        "decoy",
        "store/decoy",
        "etc/passwd",
        DECOY_KEY,
        ...LIVE_KEYS,
      ),
    ).map(([steps, target]) => steps.join("") + target),
  },
  { weight: 1, arbitrary: fc.constantFrom(...KNOWN_KEYS).map((k) => `${k}\0`) },
);

/** What a handler does with the session of a hostile request. */
export type Action = "none" | "read" | "set" | "flush" | "cycle" | "expiry";
// Reading is where hostile input enters; writes are fewer, as in real traffic.
export const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Action>("read") },
  { weight: 1, arbitrary: fc.constant<Action>("none") },
  { weight: 2, arbitrary: fc.constant<Action>("set") },
  { weight: 1, arbitrary: fc.constant<Action>("flush") },
  { weight: 1, arbitrary: fc.constant<Action>("cycle") },
  { weight: 1, arbitrary: fc.constant<Action>("expiry") },
);

/** Does to `session` what a mutating `action` names; "none" and "read" do nothing here. */
export async function perform(session: Session, action: Action): Promise<void> {
  if (action === "set") session.set("touched", 1);
  if (action === "flush") await session.flush();
  if (action === "cycle") {
    await session.cycleKey();
    session.set("cycled", true);
  }
  if (action === "expiry") session.setExpiry(60);
}

const encoder = new TextEncoder();

/** A value where a session keeps its expiry (`_session_expiry`), hostile ones included. */
export const expiryValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom(
    0,
    -1,
    1,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    8_640_000_000_000,
    "+275760-09-13T00:00:00.000Z",
    "-271821-04-20T00:00:00.000Z",
    "9999-12-31T23:59:59+00:00",
    "2000-01-01T00:00:00+00:00",
    "not a date",
    null,
    true,
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Session data as the engine stores it: any bytes, any JSON, and near-sessions. */
export const storedData: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ unit: "binary", maxLength: 200 }).map((text) => encoder.encode(text)),
  fc.json({ maxDepth: 3 }).map((text) => encoder.encode(text)),
  fc.tuple(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })), expiryValue)
    .map(([data, expiry]) => encoder.encode(JSON.stringify({ ...data, _session_expiry: expiry }))),
  fc.tuple(fc.json({ maxDepth: 3 }), fc.nat()).map(([text, n]) =>
    encoder.encode(text.slice(0, n % (text.length + 1)))
  ),
  fc.constantFrom(
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '{"_session_expiry":1e309}',
    '{"a":1}\u0000',
    "\ufeff{}",
    "null",
    "[]",
    '"string"',
    "",
  ).map((text) => encoder.encode(text)),
);

/** A whole session file: any bytes, or an expiry line that may be anything, then data. */
export const fileBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(
    fc.oneof(
      fc.constant(String(Date.now() + 3_600_000)),
      fc.constant(String(Date.now() - 3_600_000)),
      fc.constantFrom(
        "",
        " ",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "0x1F",
        "  99999999999999 ",
      ),
      fc.double().map(String),
      fc.string({ unit: "binary", maxLength: 20 }),
    ),
    fc.constantFrom("\n", "\r\n", "", "\n\n"),
    storedData,
  ).map(([line, newline, data]) => {
    const head = encoder.encode(line + newline);
    const bytes = new Uint8Array(head.length + data.length);
    bytes.set(head);
    bytes.set(data, head.length);
    return bytes;
  }),
);
