// The cost of signing and verifying per call, on the runtime running it,
// against a bare HMAC-SHA256 of the same bytes measured in the same run, and
// the two deflate implementations both runtimes offer, on a session-sized
// JSON.
//
//   deno run bench/signing_bench.ts      bun bench/signing_bench.ts
//   npm run bench:signing                (both)
//
// Options: --time=<ms per measurement> (default 200), --rounds=<n> (default
// 9; medians are reported).

import { deflateSync, inflateSync } from "node:zlib";
import { CookieStore, dumps, loads, sign, unsign } from "../mod.ts";

const SECRET = "a-benchmark-secret-of-at-least-32-bytes-long";
const OLD_SECRET = "the-previous-benchmark-secret-of-32-bytes-or-more";
const SALT = "django.contrib.sessions.backends.signed_cookies";

function option(name: string, fallback: number): number {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}
const TIME_MS = option("time", 200);
const ROUNDS = option("rounds", 9);

// What a logged-in user with a small cart carries: about 400 bytes of JSON.
const SESSION = {
  _auth_user_id: "42",
  _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
  _auth_user_hash: "3f1c0c6a9e6f4b2d8a7e5c4b3a2918171615141312111009080706050403020100",
  cart: Array.from({ length: 6 }, (_, i) => ({ sku: `item-${i}`, qty: i + 1 })),
  _session_expiry: 3600,
};
const JSON_TEXT = JSON.stringify(SESSION);
const JSON_BYTES = new TextEncoder().encode(JSON_TEXT);
const PAYLOAD = JSON_BYTES.toBase64({ alphabet: "base64url", omitPadding: true });

type Case = { name: string; run: () => unknown };

/** Calls per second of `run` over ~TIME_MS, as nanoseconds per call. */
async function measure(run: () => unknown): Promise<number> {
  let calls = 0;
  let batch = 16;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < TIME_MS) {
    for (let i = 0; i < batch; i++) await run();
    calls += batch;
    batch = Math.min(batch * 2, 4096);
    elapsed = performance.now() - start;
  }
  return (elapsed * 1e6) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Measures the baseline and every case once per round, in turn, so that a
 * busy moment of a shared machine weighs on all of them alike; reports the
 * median time and the median of each round's ratio to its baseline.
 */
async function compare(
  baseline: Case,
  cases: Case[],
): Promise<{ name: string; ns: number; ratio: number }[]> {
  const all = [baseline, ...cases];
  const times = all.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < all.length; i++) times[i]!.push(await measure(all[i]!.run));
  }
  return all.map((entry, i) => ({
    name: entry.name,
    ns: median(times[i]!),
    ratio: median(times[i]!.map((ns, round) => ns / times[0]![round]!)),
  }));
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`Invalid output: ${what}`);
}

async function deflateStream(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function inflateStream(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function main(): Promise<void> {
  const runtime = "Bun" in globalThis
    ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
    : `deno ${
      (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno
    }`;

  // The baseline: the one HMAC that sign() cannot avoid, on the same bytes,
  // with a key imported once.
  const rawKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(32),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  const message = new TextEncoder().encode(`${PAYLOAD}:1sD4o1`);

  const signed = await sign(PAYLOAD, { secret: SECRET, salt: SALT });
  const signedOld = await sign(PAYLOAD, { secret: OLD_SECRET, salt: SALT });
  const dumped = await dumps(SESSION, { secret: SECRET, compress: true });
  const store = new CookieStore();
  store.configure({
    cookieName: "sessionid",
    cookieAge: 1_209_600,
    secrets: [SECRET, OLD_SECRET],
    logger: console,
  });
  const cookie = await store.create({ data: JSON_TEXT, expiresAt: Date.now() + 60_000 });
  const deflated = new Uint8Array(deflateSync(JSON_BYTES));

  // Every contender is checked before it is timed.
  check(await unsign(signed, { secret: SECRET, salt: SALT }) === PAYLOAD, "unsign");
  check(
    await unsign(signedOld, { secret: [SECRET, OLD_SECRET], salt: SALT }) === PAYLOAD,
    "unsign with the old secret",
  );
  check(JSON.stringify(await loads(dumped, { secret: SECRET })) === JSON_TEXT, "loads");
  check((await store.load(cookie))?.data === JSON_TEXT, "CookieStore.load");
  check(dumped.startsWith("."), "dumps compresses");
  check(inflateSync(deflated).length === JSON_BYTES.length, "inflateSync");
  check(
    (await inflateStream(await deflateStream(JSON_BYTES))).length === JSON_BYTES.length,
    "streams",
  );

  const groups: { title: string; baseline: Case; cases: Case[] }[] = [
    {
      title: `signing a ${JSON_BYTES.length}-byte session (${PAYLOAD.length} chars of base64url)`,
      baseline: {
        name: "baseline: crypto.subtle.sign HMAC-SHA256",
        run: () => crypto.subtle.sign("HMAC", rawKey, message),
      },
      cases: [
        { name: "sign()", run: () => sign(PAYLOAD, { secret: SECRET, salt: SALT }) },
        { name: "unsign()", run: () => unsign(signed, { secret: SECRET, salt: SALT }) },
        {
          name: "unsign(), old secret (2 verifies)",
          run: () => unsign(signedOld, { secret: [SECRET, OLD_SECRET], salt: SALT }),
        },
        {
          name: "dumps(), compress: true",
          run: () => dumps(SESSION, { secret: SECRET, compress: true }),
        },
        { name: "loads(), compressed", run: () => loads(dumped, { secret: SECRET }) },
        {
          name: "CookieStore.create()",
          run: () => store.create({ data: JSON_TEXT, expiresAt: 0 }),
        },
        { name: "CookieStore.load()", run: () => store.load(cookie) },
      ],
    },
    {
      title: `deflate of the same ${JSON_BYTES.length}-byte JSON`,
      baseline: { name: "baseline: node:zlib deflateSync", run: () => deflateSync(JSON_BYTES) },
      cases: [
        { name: 'CompressionStream("deflate")', run: () => deflateStream(JSON_BYTES) },
        { name: "node:zlib inflateSync", run: () => inflateSync(deflated) },
        { name: 'DecompressionStream("deflate")', run: () => inflateStream(deflated) },
      ],
    },
  ];

  console.log(`${runtime}: medians of ${ROUNDS} rounds of ${TIME_MS} ms per measurement`);
  for (const group of groups) {
    console.log(`\n${group.title}`);
    for (const { name, ns, ratio } of await compare(group.baseline, group.cases)) {
      console.log(`  ${name.padEnd(44)} ${format(ns)}  ${ratio.toFixed(2).padStart(6)}x`);
    }
  }
}

function format(ns: number): string {
  return `${ns.toFixed(0).padStart(8)} ns/op`;
}

await main();
