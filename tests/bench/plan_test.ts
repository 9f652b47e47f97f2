import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allServers,
  engineClass,
  pairLabel,
  parseOptions,
  planPairs,
  schedule,
} from "../../bench/_plan.ts";

describe("parseOptions()", () => {
  it("defaults to 3 runs of 5 s after 1 s, 64 connections, a flood of 1 000 000: a complete run", () => {
    const options = parseOptions([]);
    assert.notEqual(options, "help");
    if (options === "help") return;
    assert.equal(options.duration, 5);
    assert.equal(options.runs, 3);
    assert.equal(options.warmup, 1);
    assert.equal(options.connections, 64);
    assert.equal(options.flood, 1_000_000);
    assert.equal(options.floodEntries, 100_000);
    assert.deepEqual(options.floodOn, ["deno"]);
    assert.equal(options.install, true);
    assert.equal(options.roots, null);
    assert.equal(options.force, false);
    assert.equal(options.quick, false);
    assert.equal(options.complete, true);
  });

  it("makes any shortened run a partial one", () => {
    for (
      const args of [
        ["--duration", "1"],
        ["--runs", "1"],
        ["--only", "bun"],
        ["--flood", "0"],
        ["--root", "/dev/shm"],
        ["--quick"],
      ]
    ) {
      const options = parseOptions(args);
      assert.equal(
        options !== "help" && options.complete,
        false,
        args.join(" "),
      );
    }
  });

  it("reads --only as a case-insensitive regular expression and --no-install", () => {
    const options = parseOptions(["--only", "Tessera-Memory", "--no-install"]);
    assert.ok(options !== "help");
    assert.equal(options.only?.test("tessera-memory-deno read"), true);
    assert.equal(options.install, false);
  });

  it("refuses an unknown option, a bad number and a bad pattern, with the usage", () => {
    assert.throws(() => parseOptions(["--fast"]), {
      name: "TypeError",
      message: /Usage:/,
    });
    assert.throws(() => parseOptions(["--runs", "0"]), {
      message: /'--runs' must be a whole number of at least 1: current value is 0/,
    });
    assert.throws(() => parseOptions(["--duration", "1.5"]), {
      message: /'--duration'/,
    });
    assert.throws(() => parseOptions(["--only", "("]), { message: /'--only'/ });
  });

  it("floods on the runtimes --flood-on lists, still a complete run with Deno", () => {
    const options = parseOptions(["--flood-on", "deno,bun"]);
    assert.ok(options !== "help");
    assert.deepEqual(options.floodOn, ["deno", "bun"]);
    assert.equal(options.complete, true);
    const bunOnly = parseOptions(["--flood-on", "bun"]);
    assert.equal(bunOnly !== "help" && bunOnly.complete, false);
    assert.throws(() => parseOptions(["--flood-on", "node"]), {
      message: /'--flood-on'/,
    });
  });

  it("takes --root several times, and --force and --quick", () => {
    const options = parseOptions([
      "--root",
      "/a",
      "--root",
      "/b",
      "--force",
      "--quick",
    ]);
    assert.ok(options !== "help");
    assert.deepEqual(options.roots, ["/a", "/b"]);
    assert.equal(options.force, true);
    assert.equal(options.quick, true);
    const forced = parseOptions(["--force"]);
    assert.equal(
      forced !== "help" && forced.complete,
      true,
      "--force alone keeps a complete run",
    );
  });

  it("answers --help", () => {
    assert.equal(parseOptions(["--help"]), "help");
  });
});

describe("allServers()", () => {
  it("runs every engine on Deno and on Bun, so that adding an engine adds its servers", () => {
    const ids = allServers(["memory", "redis"]).filter((server) => server.kind === "tessera")
      .map((server) => `${server.id} ${server.name} ${server.args.join(" ")}`);
    assert.deepEqual(ids, [
      "tessera-memory-deno Tessera MemoryStore memory",
      "tessera-memory-bun Tessera MemoryStore memory",
      "tessera-memory-plain-deno Tessera MemoryStore, no secret memory --plain",
      "tessera-memory-plain-bun Tessera MemoryStore, no secret memory --plain",
      "tessera-redis-deno Tessera RedisStore redis",
      "tessera-redis-bun Tessera RedisStore redis",
    ]);
  });

  it("puts each engine's floor before it, signed as it is, and names the floor of each row", () => {
    const servers = allServers(["memory", "cookie", "redis"]);
    const lines = servers.filter((server) => server.engine !== undefined).map((
      server,
    ) => `${server.id} ${server.workloads.join(",")} ${server.floor ?? "-"}`);
    assert.deepEqual(lines, [
      "floor-memory-deno read,write -",
      "floor-memory-bun read,write -",
      "tessera-memory-deno read,write,new floor-memory-deno",
      "tessera-memory-bun read,write,new floor-memory-bun",
      "floor-memory-plain-deno read,write -",
      "floor-memory-plain-bun read,write -",
      "tessera-memory-plain-deno read,write floor-memory-plain-deno",
      "tessera-memory-plain-bun read,write floor-memory-plain-bun",
      // The signed cookie needs a secret; Redis has no floor yet.
      "floor-cookie-deno read -",
      "floor-cookie-bun read -",
      "tessera-cookie-deno read,write,new floor-cookie-deno",
      "tessera-cookie-bun read,write,new floor-cookie-bun",
      "tessera-redis-deno read,write,new -",
      "tessera-redis-bun read,write,new -",
    ]);
    const plainFloor = servers.find((server) => server.id === "floor-memory-plain-deno")!;
    assert.deepEqual([plainFloor.file, plainFloor.args, plainFloor.signed], [
      "floor.ts",
      ["memory", "--plain"],
      false,
    ]);
  });

  it("runs the file rows in every place and the others in the first", () => {
    const places = [{ name: "ext4", dir: "/var/tmp" }, {
      name: "tmpfs",
      dir: "/dev/shm",
    }];
    const servers = allServers(["file", "sqlite"], places).filter((server) =>
      server.runtime === "deno"
    );
    assert.deepEqual(
      servers.filter((server) => server.engine !== undefined).map((server) =>
        `${server.id} | ${server.name} | ${server.args.join(" ")}`
      ),
      [
        "floor-file-ext4-deno | floor: file, ext4 | file --root /var/tmp",
        "tessera-file-ext4-deno | Tessera FileStore, ext4 | file --root /var/tmp",
        "floor-file-ext4-plain-deno | floor: file, ext4, no secret | file --root /var/tmp --plain",
        "tessera-file-ext4-plain-deno | Tessera FileStore, ext4, no secret | file --root /var/tmp --plain",
        "floor-file-tmpfs-deno | floor: file, tmpfs | file --root /dev/shm",
        "tessera-file-tmpfs-deno | Tessera FileStore, tmpfs | file --root /dev/shm",
        "floor-file-tmpfs-plain-deno | floor: file, tmpfs, no secret | file --root /dev/shm --plain",
        "tessera-file-tmpfs-plain-deno | Tessera FileStore, tmpfs, no secret | file --root /dev/shm --plain",
        "floor-sqlite-deno | floor: SQLite | sqlite --root /var/tmp",
        "tessera-sqlite-deno | Tessera SqliteStore | sqlite --root /var/tmp",
        "floor-sqlite-plain-deno | floor: SQLite, no secret | sqlite --root /var/tmp --plain",
        "tessera-sqlite-plain-deno | Tessera SqliteStore, no secret | sqlite --root /var/tmp --plain",
      ],
    );
  });

  it("has a bare server for every runtime, and unique ids", () => {
    const servers = allServers();
    const runtimes = new Set(servers.map((server) => server.runtime));
    for (const runtime of runtimes) {
      assert.ok(
        servers.some((server) => server.kind === "bare" && server.runtime === runtime),
      );
    }
    assert.equal(
      new Set(servers.map((server) => server.id)).size,
      servers.length,
    );
  });

  it("names engines as Tessera's classes", () => {
    assert.equal(engineClass("sqlite"), "SqliteStore");
  });
});

describe("planPairs()", () => {
  const servers = allServers(["memory"]);

  it("runs each session server once per workload it has and the others once", () => {
    const labels = planPairs(servers, null).map(pairLabel);
    assert.ok(labels.includes("bare-deno -"));
    assert.deepEqual(
      labels.filter((label) => label.startsWith("tessera-memory-deno")),
      [
        "tessera-memory-deno read",
        "tessera-memory-deno write",
        "tessera-memory-deno new",
      ],
    );
    assert.deepEqual(
      labels.filter((label) => label.startsWith("floor-memory-deno")),
      [
        "floor-memory-deno read",
        "floor-memory-deno write",
      ],
    );
  });

  it("keeps a floor whose Tessera server is not listed", () => {
    const floors = servers.filter((server) => server.kind === "floor");
    assert.deepEqual(planPairs(floors, null).map(pairLabel).slice(0, 2), [
      "floor-memory-deno read",
      "floor-memory-deno write",
    ]);
  });

  it("keeps what --only matches, the floors of its Tessera pairs and the bare servers", () => {
    assert.deepEqual(
      planPairs(servers, /tessera-memory-bun (read|new)/).map(pairLabel),
      [
        "bare-bun -",
        "floor-memory-bun read",
        "tessera-memory-bun read",
        "tessera-memory-bun new",
      ],
    );
  });
});

describe("schedule()", () => {
  const pairs = planPairs(
    allServers(["memory"]),
    /^(bare-deno|bare-bun|tessera-memory-deno)/,
  );

  it("visits every pair once a round, the bare servers first, the others reversed in odd rounds", () => {
    const visits = schedule(
      pairs.filter((pair) => pair.server.kind !== "floor"),
      2,
    ).map((visit) => `${visit.round} ${pairLabel(visit.pair)}`);
    assert.deepEqual(visits, [
      "0 bare-deno -",
      "0 bare-bun -",
      "0 tessera-memory-deno read",
      "0 tessera-memory-deno write",
      "0 tessera-memory-deno new",
      "1 bare-deno -",
      "1 bare-bun -",
      "1 tessera-memory-deno new",
      "1 tessera-memory-deno write",
      "1 tessera-memory-deno read",
    ]);
  });

  it("measures each floor next to the Tessera row that divides by it, first in turn", () => {
    const visits = schedule(pairs, 2);
    const round = (number: number) =>
      visits.filter((visit) => visit.round === number).map((visit) => pairLabel(visit.pair))
        .slice(2);
    assert.deepEqual(round(0), [
      "floor-memory-deno read",
      "tessera-memory-deno read",
      "floor-memory-deno write",
      "tessera-memory-deno write",
      "tessera-memory-deno new",
    ]);
    assert.deepEqual(round(1), [...round(0)].reverse());
  });

  it("gives every pair one run a round", () => {
    for (const rounds of [1, 2, 3, 5]) {
      const counts = new Map<string, number>();
      for (const visit of schedule(pairs, rounds)) {
        const label = pairLabel(visit.pair);
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      assert.deepEqual(
        [...counts.values()],
        pairs.map(() => rounds),
        `rounds ${rounds}`,
      );
    }
  });
});
