// CPU per HMAC-SHA256 sign and verify of a session-sized record: WebCrypto
// (async, a promise per call) against node:crypto's createHmac (synchronous)
// with timingSafeEqual. Run: deno run -A bench/hmac_bench.ts; bun bench/hmac_bench.ts
import { createHmac, timingSafeEqual } from "node:crypto";
import process from "node:process";

const N = Number(process.argv[2] ?? 50_000);
const message = new TextEncoder().encode(
  `abcdefghijklmnopqrstuvwxyz012345\n${Date.now()}\n${
    JSON.stringify({ user: 42, cart: [1, 2, 3] })
  }`,
);
const keyBytes = new Uint8Array(
  await crypto.subtle.digest("SHA-256", new TextEncoder().encode("saltsignersecret")),
);
const key = await crypto.subtle.importKey(
  "raw",
  keyBytes,
  { name: "HMAC", hash: "SHA-256" },
  false,
  [
    "sign",
    "verify",
  ],
);
const expected = new Uint8Array(await crypto.subtle.sign("HMAC", key, message));

function cpu(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function time(name: string, run: () => unknown | Promise<unknown>): Promise<void> {
  for (let i = 0; i < 2000; i++) await run();
  const wall = performance.now();
  const start = cpu();
  for (let i = 0; i < N; i++) await run();
  const us = (cpu() - start) / N;
  const wallUs = ((performance.now() - wall) * 1000) / N;
  console.log(`${name.padEnd(36)} ${us.toFixed(2)} µs CPU, ${wallUs.toFixed(2)} µs wall`);
}

const runtime = "Bun" in globalThis ? "Bun" : "Deno";
console.log(`${runtime}, ${N} calls, ${message.length}-byte message`);
await time("WebCrypto sign", () => crypto.subtle.sign("HMAC", key, message));
await time("WebCrypto verify", () => crypto.subtle.verify("HMAC", key, expected, message));
await time(
  "node:crypto createHmac sign",
  () => createHmac("sha256", keyBytes).update(message).digest(),
);
await time(
  "node:crypto verify (timingSafeEqual)",
  () => timingSafeEqual(createHmac("sha256", keyBytes).update(message).digest(), expected),
);
