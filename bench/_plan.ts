// What the suite measures: the servers, the workloads, the matching peers,
// the targets, and the command-line options.
import { parseArgs } from "node:util";
import { BUSY_LOAD_PER_CORE } from "./_load.ts";
import { ENGINES } from "./servers/engines.ts";

/** The runtimes servers run on. */
export type Runtime = "deno" | "bun" | "node";

/** A session workload; bare servers and Hono alone run none (`null`). */
export type Workload = "read" | "write" | "new";

/** The workloads, in the order the table shows them. */
export const WORKLOADS: readonly Workload[] = ["read", "write", "new"];

/**
 * What a server is: the runtime's bare server (the ceiling every ratio
 * divides by), a framework without sessions, a floor (the I/O a workload
 * cannot avoid, without session logic), Tessera, or a peer library.
 */
export type Kind = "bare" | "framework" | "floor" | "tessera" | "peer";

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
  /** The workloads it runs: none for a server without sessions. */
  workloads: readonly Workload[];
  /** For Tessera: the engine's name in ENGINES; for a floor, the engine it is the floor of. */
  engine?: string;
  /** For Tessera and floors: whether records are signed (a secret is set). */
  signed?: boolean;
  /** For the engines that run in every place (see PER_PLACE): the place's name. */
  place?: string;
  /** For Tessera: the id of its floor server, when the engine has one. */
  floor?: string;
}

/** A directory the file rows run in, named for the table (`ext4`, `tmpfs`). */
export interface Place {
  name: string;
  dir: string;
}

/**
 * The floors: for each engine that has one, the workloads it covers. What
 * each does is described in bench/servers/floor.ts. A PostgreSQL read floor
 * is still to come (issue 14).
 */
export const FLOORS: Record<string, readonly Workload[]> = {
  memory: ["read", "write"],
  file: ["read", "write"],
  cookie: ["read"],
  sqlite: ["read", "write"],
};

/** The engines measured in every place (`--root`), since the file system is what they wait on. */
export const PER_PLACE: readonly string[] = ["file"];

/** The engines that cannot run without a secret: they get no unsigned rows. */
export const SIGNED_ONLY: readonly string[] = ["cookie"];

const FLOOR_NAMES: Record<string, string> = {
  memory: "memory",
  file: "file",
  cookie: "signed cookie",
  sqlite: "SQLite",
};

/** A server on Deno and on Bun. */
function onDenoAndBun(
  spec: Omit<ServerSpec, "id" | "runtime" | "floor"> & { floor?: string },
  id: string,
): ServerSpec[] {
  return (["deno", "bun"] as const).map((runtime) => {
    const server: ServerSpec = { ...spec, id: `${id}-${runtime}`, runtime };
    if (spec.floor !== undefined) server.floor = `${spec.floor}-${runtime}`;
    return server;
  });
}

/** Tessera's name for an engine: `memory` is `MemoryStore`. */
export function engineClass(engine: string): string {
  return `${engine.charAt(0).toUpperCase()}${engine.slice(1)}Store`;
}

/**
 * The servers of one engine: for each place it runs in and with a secret
 * and without, its floor (if any) and Tessera, on Deno and Bun. The rows
 * without a secret run only the workloads their floor covers.
 */
function engineServers(engine: string, places: readonly Place[]): ServerSpec[] {
  const floorWorkloads = FLOORS[engine];
  const where: readonly (Place | undefined)[] = PER_PLACE.includes(engine) && places.length > 0
    ? places
    : [places[0]];
  const servers: ServerSpec[] = [];
  for (const place of where) {
    const placeName = where.length > 1 || PER_PLACE.includes(engine) ? place?.name : undefined;
    for (
      const signed of SIGNED_ONLY.includes(engine) ? [true] : [true, false]
    ) {
      if (!signed && floorWorkloads === undefined) continue;
      const suffix = `${placeName === undefined ? "" : `-${placeName}`}${signed ? "" : "-plain"}`;
      const label = [
        ...(placeName === undefined ? [] : [placeName]),
        ...(signed ? [] : ["no secret"]),
      ];
      const detail = label.length === 0 ? "" : `, ${label.join(", ")}`;
      const args = [
        engine,
        ...(place === undefined ? [] : ["--root", place.dir]),
        ...(signed ? [] : ["--plain"]),
      ];
      const common = {
        args,
        sessions: true,
        engine,
        signed,
        ...(placeName === undefined ? {} : { place: placeName }),
      };
      if (floorWorkloads !== undefined) {
        servers.push(...onDenoAndBun({
          ...common,
          name: `floor: ${FLOOR_NAMES[engine] ?? engine}${detail}`,
          kind: "floor",
          file: "floor.ts",
          workloads: floorWorkloads,
        }, `floor-${engine}${suffix}`));
      }
      servers.push(...onDenoAndBun({
        ...common,
        name: `Tessera ${engineClass(engine)}${detail}`,
        kind: "tessera",
        file: "tessera.ts",
        workloads: signed ? WORKLOADS : floorWorkloads!,
        ...(floorWorkloads === undefined ? {} : { floor: `floor-${engine}${suffix}` }),
      }, `tessera-${engine}${suffix}`));
    }
  }
  return servers;
}

/**
 * Every server, in the table's order within a workload. Tessera gets its
 * servers per engine in bench/servers/engines.ts, so an engine added there
 * is measured without a change here; each is preceded by its floor. The
 * engines of PER_PLACE run in every place, the others in the first.
 */
export function allServers(
  engines: readonly string[] = Object.keys(ENGINES),
  places: readonly Place[] = [],
): ServerSpec[] {
  const bare = (runtime: Runtime, name: string, file: string): ServerSpec => ({
    id: `bare-${runtime}`,
    name,
    runtime,
    kind: "bare",
    file,
    args: [],
    sessions: false,
    workloads: [],
  });
  const peer = (
    spec: Omit<
      ServerSpec,
      "id" | "runtime" | "kind" | "sessions" | "workloads"
    >,
  ) => ({
    ...spec,
    kind: "peer" as const,
    sessions: true,
    workloads: WORKLOADS,
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
        workloads: [],
      },
      "hono",
    ),
    ...engines.flatMap((engine) => engineServers(engine, places)),
    ...onDenoAndBun(
      peer({
        name: "hono-sessions MemoryStore",
        file: "hono_sessions.ts",
        args: ["memory"],
      }),
      "hono-sessions-memory",
    ),
    ...onDenoAndBun(
      peer({
        name: "hono-sessions CookieStore",
        file: "hono_sessions.ts",
        args: ["cookie"],
      }),
      "hono-sessions-cookie",
    ),
    {
      id: "express-session-memory-node",
      runtime: "node",
      ...peer({
        name: "express-session MemoryStore",
        file: "express_session.mjs",
        args: ["memory"],
      }),
    },
    {
      id: "express-session-file-node",
      runtime: "node",
      ...peer({
        name: "express-session + session-file-store",
        file: "express_session.mjs",
        args: ["file"],
      }),
    },
    {
      id: "fastify-session-node",
      runtime: "node",
      ...peer({
        name: "@fastify/session",
        file: "fastify_session.mjs",
        args: [],
      }),
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

/**
 * The least share of its floor each engine should keep, by workload (issue
 * 14): Tessera's req/s over its floor's, the median of the rounds' ratios.
 */
export const FLOOR_TARGETS: Record<string, Partial<Record<Workload, number>>> = {
  memory: { read: 0.9, write: 0.9 },
  file: { read: 0.9, write: 0.85 },
  cookie: { read: 0.85 },
};

/** The suite's options. */
export interface Options {
  /** Seconds of one measured run. */
  duration: number;
  /** Rounds: each server and workload is measured once a round, in turn. */
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
  /** The directories the file rows run in (`null`: the OS temp dir and a tmpfs, if any). */
  roots: string[] | null;
  /** Publish a complete run's figures even from a busy machine, its load shown beside them. */
  force: boolean;
  /** Only start each server, seed it and check its answers: no timing. */
  quick: boolean;
  /** A full run at the defaults: its results replace the table in docs/benchmarks.md. */
  complete: boolean;
}

/** The usage text of `npm run bench`. */
export const USAGE = `Usage: npm run bench -- [options]

Options:
  --duration <s>      seconds of each measured run (default 5)
  --runs <n>          rounds; each round measures every server and workload once,
                      in turn, and ratios are the median of the rounds' (default 3)
  --warmup <s>        seconds of the warm-up run before each (default 1)
  --connections <n>   wrk connections (default 64)
  --only <regex>      only servers whose "<id> <workload>" matches, e.g. "tessera-memory",
                      "bun", "read$", "flood"; the floors of the Tessera pairs it
                      keeps and the bare servers always run
  --flood <n>         requests of the memory flood (default 1000000; 0 skips it)
  --flood-on <list>   runtimes of the flood, "deno", "bun" or "deno,bun" (default deno)
  --root <dir>        a directory the file rows run in; repeat it for several
                      (default: the OS temp dir, and /dev/shm when it is a tmpfs)
  --force             publish a complete run even when the machine is busy (load
                      average above ${BUSY_LOAD_PER_CORE} per core at the start); its load is shown
  --quick             only start each server, seed a few sessions and check its
                      answers, timing nothing (for the tests)
  --no-install        do not install wrk or the peer libraries first
  --help              this text

A run with the defaults on a quiet machine writes bench/results/<date>/ and
the table in docs/benchmarks.md; any other run writes its results to a temp
directory.`;

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
        root: { type: "string", multiple: true },
        force: { type: "boolean" },
        quick: { type: "boolean" },
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
  if (
    floodOn.length === 0 ||
    floodOn.some((name) => name !== "deno" && name !== "bun")
  ) {
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
    roots: parsed.root ?? null,
    force: parsed.force === true,
    quick: parsed.quick === true,
    complete: false,
  };
  options.complete = options.duration === 5 && options.runs === 3 &&
    options.warmup === 1 && options.roots === null && !options.quick &&
    options.connections === 64 && only === null &&
    options.flood === 1_000_000 &&
    options.floodOn.includes("deno");
  return options;
}

/** One measurement: a server and the workload it runs (`null`: none). */
export interface Pair {
  server: ServerSpec;
  workload: Workload | null;
}

/**
 * The pairs to measure, in order; `only` keeps the bare servers of the
 * runtimes it selects and the floors of the Tessera pairs it selects.
 */
export function planPairs(
  servers: readonly ServerSpec[],
  only: RegExp | null,
): Pair[] {
  // Each floor's workload just before the Tessera workload that divides by
  // it; a floor no listed server divides by keeps its own place.
  const byId = new Map(servers.map((server) => [server.id, server]));
  const used = new Set(servers.flatMap((server) => server.floor ?? []));
  const pairs = servers.flatMap((server): Pair[] => {
    if (!server.sessions) return [{ server, workload: null }];
    if (server.kind === "floor" && used.has(server.id)) return [];
    const floor = server.floor === undefined ? undefined : byId.get(server.floor);
    return server.workloads.flatMap((workload) => [
      ...(floor?.workloads.includes(workload) ? [{ server: floor, workload }] : []),
      { server, workload },
    ]);
  });
  if (only === null) return pairs;
  const chosen = pairs.filter((pair) => only.test(pairLabel(pair)));
  const runtimes = new Set(chosen.map((pair) => pair.server.runtime));
  const floors = new Set(
    chosen.flatMap((pair) =>
      pair.server.floor === undefined ? [] : [`${pair.server.floor} ${pair.workload}`]
    ),
  );
  return pairs.filter((pair) =>
    chosen.includes(pair) || floors.has(pairLabel(pair)) ||
    (pair.server.kind === "bare" && runtimes.has(pair.server.runtime))
  );
}

/** A pair as `--only` sees it: `tessera-memory-deno read`. */
export function pairLabel(pair: Pair): string {
  return `${pair.server.id} ${pair.workload ?? "-"}`;
}

/** One visit to a pair: a fresh server, its warm-up, and one measured run. */
export interface Visit {
  pair: Pair;
  /** The round, from 0: ratios are taken between the runs of one round. */
  round: number;
}

/**
 * The order of the visits: `rounds` rounds, each visiting every pair once,
 * the bare servers first. Every ratio divides a row's run by the run of the
 * same round of the server it is compared with, and takes the median of
 * those ratios, so that a change in the machine's load over the whole run
 * (other work starting or ending) moves both sides of a ratio alike. Each
 * floor is measured next to the Tessera row that divides by it (planPairs),
 * before it in even rounds and after it in odd ones (the other pairs are in
 * reverse order then): what one visit leaves behind, such as dirty pages the
 * disk writes back during the next, then falls on either side in turn.
 */
export function schedule(pairs: readonly Pair[], rounds: number): Visit[] {
  const bare = pairs.filter((pair) => pair.server.kind === "bare");
  const others = pairs.filter((pair) => pair.server.kind !== "bare");
  return Array.from({ length: rounds }, (_, round) => {
    const order = round % 2 === 0 ? others : [...others].reverse();
    return [...bare, ...order].map((pair) => ({ pair, round }));
  }).flat();
}
