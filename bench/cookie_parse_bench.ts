// The time to find the session cookie in a 120 KB Cookie header an attacker
// built (many segments without "=", or many tiny pairs), against a normal
// header of the same size, on the runtime running it; and the same headers through the parser
// as it was before it was made linear, for the figure the change is about.
//
//   deno run bench/cookie_parse_bench.ts      bun bench/cookie_parse_bench.ts
//
// Options: --time=<ms per measurement> (default 200), --rounds=<n> (default
// 9; medians are reported).

import { readCookie } from "../src/cookie.ts";

function option(name: string, fallback: number): number {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv
      .slice(2);
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}
const TIME_MS = option("time", 200);
const ROUNDS = option("rounds", 9);
const SIZE = 120_000;

// The parser before the change: it looked for "=" from the start of every
// segment, so a header of "x;x;x;..." rescanned its whole rest each time.
function quadraticReadCookie(
  header: string | null,
  name: string,
): string | undefined {
  if (header === null || !header.includes(name)) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const equals = header.indexOf("=", start);
    if (
      equals !== -1 && equals < end &&
      header.slice(start, equals).trim() === name
    ) {
      const value = header.slice(equals + 1, end).trim();
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
        ? value.slice(1, -1)
        : value;
    }
    start = end + 1;
  }
  return undefined;
}

const KEY = "k".repeat(32);
const tail = `sessionid=${KEY}`;
const pairs: string[] = [];
for (let size = 0; size < SIZE - tail.length; size += 50) {
  pairs.push(`pref_${pairs.length}=${"v".repeat(40)}`);
}
const headers = {
  "normal: name=value pairs": [...pairs, tail].join("; ").slice(-SIZE),
  "hostile: x;x;x;...": "x;".repeat((SIZE - tail.length) / 2) + tail,
  "hostile: ;;;...": ";".repeat(SIZE - tail.length) + tail,
  "hostile: a=;a=;...": "a=;".repeat((SIZE - tail.length) / 3) + tail,
  "hostile: sessionidx=;...": "sessionidx=;".repeat((SIZE - tail.length) / 12) +
    tail,
};

type Parser = (header: string | null, name: string) => string | undefined;
const parsers: [string, Parser][] = [["linear (now)", readCookie], [
  "quadratic (before)",
  quadraticReadCookie,
]];

for (const [shape, header] of Object.entries(headers)) {
  for (const [name, parse] of parsers) {
    if (parse(header, "sessionid") !== KEY) {
      throw new Error(`Invalid output: ${name} on ${shape}`);
    }
  }
}

/** Nanoseconds per call of `run`, measured over about TIME_MS. */
function measure(run: () => unknown): number {
  let calls = 0;
  let batch = 1;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < TIME_MS) {
    for (let i = 0; i < batch; i++) run();
    calls += batch;
    batch = Math.min(batch * 2, 1024);
    elapsed = performance.now() - start;
  }
  return (elapsed * 1e6) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// Every case is measured once per round, in turn, so that a busy moment of
// a shared machine weighs on all of them alike.
const cases = parsers.flatMap(([parser, parse]) =>
  Object.entries(headers).map(([shape, header]) => ({
    parser,
    shape,
    run: () => parse(header, "sessionid"),
  }))
);
const times = cases.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  cases.forEach((entry, i) => times[i]!.push(measure(entry.run)));
}

const runtime = "Bun" in globalThis
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${
    (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno
      .version.deno
  }`;
console.log(
  `Cookie parsing, ${SIZE / 1000} KB headers, ${runtime}, median of ${ROUNDS} rounds`,
);
console.log("| parser | header | µs per parse | vs normal |");
console.log("|---|---|---:|---:|");
for (const [parser] of parsers) {
  const rows = cases.map((entry, i) => ({
    ...entry,
    us: median(times[i]!) / 1000,
  }))
    .filter((row) => row.parser === parser);
  const normal = rows[0]!.us;
  for (const row of rows) {
    console.log(
      `| ${row.parser} | ${row.shape} | ${row.us.toFixed(1)} | ${(row.us / normal).toFixed(1)}x |`,
    );
  }
}
