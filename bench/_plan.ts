// What the suite measures: the servers, the workloads, the matching peers,
// the targets, and the command-line options.
import { parseArgs } from "node:util";
import { ENGINES } from "./servers/engines.ts";

/** The runtimes servers run on. */
export type Runtime = "deno" | "bun" | "node";

/** A session workload; bare servers and Hono alone run none (`null`). */
export type Workload = "read" | "write" | "new";

/** The workloads, in the order the table shows them. */
export const WORKLOADS: readonly Workload[] = ["read", "write", "new"];

/**
 * What a server is: the runtime's bare server (the ceiling every ratio
 * divides by), a framework without sessions, Tessera, or a peer library.
 */
export type Kind = "bare" | "framework" | "tessera" | "peer";

/** One server the suite starts, once per workload it runs. */
export interface ServerSpec {
  /** Unique, for file names and `--only`: `tessera-memory-deno`. */
  id: string;
  /** As the table shows it: `Tessera MemoryStore`. */
  name: string;
  runtime: Runtime;
  kind: Kind;
  /** The server's file in bench/servers/. */
  file: string;
  /** Arguments before the workload. */
  args: string[];
  /** Whether it has sessions (then it runs each workload) or answers a constant. */
  sessions: boolean;
  /** For Tessera: the engine's name in ENGINES. */
  engine?: string;
}

/** A session-library server on Deno and on Bun. */
function onDenoAndBun(
  spec: Omit<ServerSpec, "id" | "runtime">,
  id: string,
): ServerSpec[] {
  return (["deno", "bun"] as const).map((runtime) => ({
    ...spec,
    id: `${id}-${runtime}`,
    runtime,
  }));
}

/** Tessera's name for an engine: `memory` is `MemoryStore`. */
export function engineClass(engine: string): string {
  return `${engine.charAt(0).toUpperCase()}${engine.slice(1)}Store`;
}

/**
 * Every server, in the table's order within a workload. Tessera gets one
 * server per engine in bench/servers/engines.ts, so an engine added there
 * is measured without a change here.
 */
export function allServers(
  engines: readonly string[] = Object.keys(ENGINES),
): ServerSpec[] {
  const bare = (runtime: Runtime, name: string, file: string): ServerSpec => ({
    id: `bare-${runtime}`,
    name,
    runtime,
    kind: "bare",
    file,
    args: [],
    sessions: false,
  });
  return [
    bare("deno", "bare Deno.serve", "bare.ts"),
    bare("bun", "bare Bun.serve", "bare.ts"),
    bare("node", "bare node:http", "bare_node.mjs"),
    ...onDenoAndBun(
      {
        name: "Hono",
        kind: "framework",
        file: "hono.ts",
        args: [],
        sessions: false,
      },
      "hono",
    ),
    ...engines.flatMap((engine) =>
      onDenoAndBun({
        name: `Tessera ${engineClass(engine)}`,
        kind: "tessera",
        file: "tessera.ts",
        args: [engine],
        sessions: true,
        engine,
      }, `tessera-${engine}`)
    ),
    ...onDenoAndBun({
      name: "hono-sessions MemoryStore",
      kind: "peer",
      file: "hono_sessions.ts",
      args: ["memory"],
      sessions: true,
    }, "hono-sessions-memory"),
    ...onDenoAndBun({
      name: "hono-sessions CookieStore",
      kind: "peer",
      file: "hono_sessions.ts",
      args: ["cookie"],
      sessions: true,
    }, "hono-sessions-cookie"),
    {
      id: "express-session-memory-node",
      name: "express-session MemoryStore",
      runtime: "node",
      kind: "peer",
      file: "express_session.mjs",
      args: ["memory"],
      sessions: true,
    },
    {
      id: "express-session-file-node",
      name: "express-session + session-file-store",
      runtime: "node",
      kind: "peer",
      file: "express_session.mjs",
      args: ["file"],
      sessions: true,
    },
    {
      id: "fastify-session-node",
      name: "@fastify/session",
      runtime: "node",
      kind: "peer",
      file: "fastify_session.mjs",
      args: [],
      sessions: true,
    },
  ];
}

/**
 * The peer a Tessera engine is compared with: the library a user would
 * otherwise pick for the same kind of storage. On the same runtime when the
 * peer runs there; otherwise (file sessions exist only on Node among the
 * peers) on the peer's runtime, each divided by its own bare server. An
 * engine without a peer in the suite gets no comparison.
 */
export const PEERS: Record<string, string> = {
  memory: "hono-sessions MemoryStore",
  cookie: "hono-sessions CookieStore",
  file: "express-session + session-file-store",
};

/** The least share of the bare server each engine should keep, by workload. */
export const TARGETS: Record<string, Partial<Record<Workload, number>>> = {
  memory: { read: 0.6, write: 0.4, new: 0.3 },
  file: { read: 0.3, write: 0.1, new: 0.1 },
  cookie: { read: 0.3 },
};

/** How many times faster than its peer every Tessera row should be. */
export const PEER_TARGET = 10;

/** The suite's options. */
export interface Options {
  /** Seconds of one measured run. */
  duration: number;
  /** Measured runs per server and workload. */
  runs: number;
  /** Seconds of the unmeasured run before them. */
  warmup: number;
  connections: number;
  /** Sessions created through each server before it is measured. */
  sessions: number;
  /** Only the pairs whose `<id> <workload>` matches; bare servers always run. */
  only: RegExp | null;
  /** Requests of the memory flood (0: no flood). */
  flood: number;
  /** MemoryStore's `maxEntries` in the flood; RSS is also read after this many requests. */
  floodEntries: number;
  /** The runtimes the flood runs on. */
  floodOn: ("deno" | "bun")[];
  /** Install wrk and the peer libraries first. */
  install: boolean;
  /** A full run at the defaults: its results replace the table in docs/benchmarks.md. */
  complete: boolean;
}

/** The usage text of `npm run bench`. */
export const USAGE = `Usage: npm run bench -- [options]

Options:
  --duration <s>      seconds of each measured run (default 5)
  --runs <n>          measured runs per server and workload (default 3)
  --warmup <s>        seconds of the warm-up run before them (default 1)
  --connections <n>   wrk connections (default 64)
  --only <regex>      only servers whose "<id> <workload>" matches, e.g. "tessera-memory",
                      "bun", "read$", "flood"; the bare servers always run
  --flood <n>         requests of the memory flood (default 1000000; 0 skips it)
  --flood-on <list>   runtimes of the flood, "deno", "bun" or "deno,bun" (default deno)
  --no-install        do not install wrk or the peer libraries first
  --help              this text

A run with the defaults writes bench/results/<date>/ and the table in docs/benchmarks.md;
any other run writes its results to a temp directory.`;

/**
 * The options from the command line.
 *
 * @throws {TypeError} for an unknown option or a value that is not a
 * positive whole number, with the usage in the message.
 */
export function parseOptions(args: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        duration: { type: "string" },
        runs: { type: "string" },
        warmup: { type: "string" },
        connections: { type: "string" },
        only: { type: "string" },
        flood: { type: "string" },
        "flood-on": { type: "string" },
        "no-install": { type: "boolean" },
        help: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new TypeError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (parsed.help) return "help";
  const whole = (
    name: string,
    value: string | undefined,
    fallback: number,
    min = 1,
  ): number => {
    if (value === undefined) return fallback;
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < min) {
      throw new TypeError(
        `Cannot run the benchmark as '--${name}' must be a whole number of at least ${min}: current value is ${value}\n\n${USAGE}`,
      );
    }
    return number;
  };
  let only: RegExp | null = null;
  if (parsed.only !== undefined) {
    try {
      only = new RegExp(parsed.only, "i");
    } catch {
      throw new TypeError(
        `Cannot run the benchmark as '--only' must be a regular expression: current value is ${parsed.only}`,
      );
    }
  }
  const floodOn = (parsed["flood-on"] ?? "deno").split(",").map((name) => name.trim());
  if (floodOn.length === 0 || floodOn.some((name) => name !== "deno" && name !== "bun")) {
    throw new TypeError(
      `Cannot run the benchmark as '--flood-on' must list deno, bun or both: current value is ${
        parsed["flood-on"]
      }\n\n${USAGE}`,
    );
  }
  const options: Options = {
    duration: whole("duration", parsed.duration, 5),
    runs: whole("runs", parsed.runs, 3),
    warmup: whole("warmup", parsed.warmup, 1, 0),
    connections: whole("connections", parsed.connections, 64),
    sessions: 1000,
    only,
    flood: whole("flood", parsed.flood, 1_000_000, 0),
    floodEntries: 100_000,
    floodOn: [...new Set(floodOn as ("deno" | "bun")[])],
    install: parsed["no-install"] !== true,
    complete: false,
  };
  options.complete = options.duration === 5 && options.runs === 3 &&
    options.warmup === 1 &&
    options.connections === 64 && only === null && options.flood === 1_000_000 &&
    options.floodOn.includes("deno");
  return options;
}

/** One measurement: a server and the workload it runs (`null`: none). */
export interface Pair {
  server: ServerSpec;
  workload: Workload | null;
}

/** The pairs to measure, in order; `only` keeps the bare servers of the runtimes it selects. */
export function planPairs(
  servers: readonly ServerSpec[],
  only: RegExp | null,
): Pair[] {
  const pairs = servers.flatMap((server): Pair[] =>
    server.sessions
      ? WORKLOADS.map((workload) => ({ server, workload }))
      : [{ server, workload: null }]
  );
  if (only === null) return pairs;
  const chosen = pairs.filter((pair) => only.test(pairLabel(pair)));
  const runtimes = new Set(chosen.map((pair) => pair.server.runtime));
  return pairs.filter((pair) =>
    chosen.includes(pair) ||
    (pair.server.kind === "bare" && runtimes.has(pair.server.runtime))
  );
}

/** A pair as `--only` sees it: `tessera-memory-deno read`. */
export function pairLabel(pair: Pair): string {
  return `${pair.server.id} ${pair.workload ?? "-"}`;
}

/** One visit to a pair: a fresh server, its warm-up, and `runs` measured runs. */
export interface Visit {
  pair: Pair;
  runs: number;
}

/**
 * The order of the visits. A bare server's runs are spread over the whole
 * run, one visit each (the first before everything else, the last after),
 * since every ratio divides by it: its median then stands for the load the
 * machine had throughout, not for the few seconds it was measured in. Every
 * other pair is one visit with all its runs.
 */
export function schedule(pairs: readonly Pair[], runs: number): Visit[] {
  const bare = pairs.filter((pair) => pair.server.kind === "bare");
  const others = pairs.filter((pair) => pair.server.kind !== "bare");
  const slots: Visit[][] = Array.from({ length: others.length + 1 }, () => []);
  for (let run = 0; run < runs; run++) {
    const slot = runs === 1 ? 0 : Math.round((run * others.length) / (runs - 1));
    for (const pair of bare) slots[slot]!.push({ pair, runs: 1 });
  }
  return slots.flatMap((visits, index) => {
    const other = others[index];
    return other === undefined ? visits : [...visits, { pair: other, runs }];
  });
}
