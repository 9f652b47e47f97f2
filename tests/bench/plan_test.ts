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
    assert.equal(options.complete, true);
  });

  it("makes any shortened run a partial one", () => {
    for (
      const args of [["--duration", "1"], ["--runs", "1"], ["--only", "bun"], ["--flood", "0"]]
    ) {
      const options = parseOptions(args);
      assert.equal(options !== "help" && options.complete, false, args.join(" "));
    }
  });

  it("reads --only as a case-insensitive regular expression and --no-install", () => {
    const options = parseOptions(["--only", "Tessera-Memory", "--no-install"]);
    assert.ok(options !== "help");
    assert.equal(options.only?.test("tessera-memory-deno read"), true);
    assert.equal(options.install, false);
  });

  it("refuses an unknown option, a bad number and a bad pattern, with the usage", () => {
    assert.throws(() => parseOptions(["--fast"]), { name: "TypeError", message: /Usage:/ });
    assert.throws(() => parseOptions(["--runs", "0"]), {
      message: /'--runs' must be a whole number of at least 1: current value is 0/,
    });
    assert.throws(() => parseOptions(["--duration", "1.5"]), { message: /'--duration'/ });
    assert.throws(() => parseOptions(["--only", "("]), { message: /'--only'/ });
  });

  it("floods on the runtimes --flood-on lists, still a complete run with Deno", () => {
    const options = parseOptions(["--flood-on", "deno,bun"]);
    assert.ok(options !== "help");
    assert.deepEqual(options.floodOn, ["deno", "bun"]);
    assert.equal(options.complete, true);
    const bunOnly = parseOptions(["--flood-on", "bun"]);
    assert.equal(bunOnly !== "help" && bunOnly.complete, false);
    assert.throws(() => parseOptions(["--flood-on", "node"]), { message: /'--flood-on'/ });
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
      "tessera-redis-deno Tessera RedisStore redis",
      "tessera-redis-bun Tessera RedisStore redis",
    ]);
  });

  it("has a bare server for every runtime, and unique ids", () => {
    const servers = allServers();
    const runtimes = new Set(servers.map((server) => server.runtime));
    for (const runtime of runtimes) {
      assert.ok(servers.some((server) => server.kind === "bare" && server.runtime === runtime));
    }
    assert.equal(new Set(servers.map((server) => server.id)).size, servers.length);
  });

  it("names engines as Tessera's classes", () => {
    assert.equal(engineClass("sqlite"), "SqliteStore");
  });
});

describe("planPairs()", () => {
  const servers = allServers(["memory"]);

  it("runs each session server once per workload and the others once", () => {
    const labels = planPairs(servers, null).map(pairLabel);
    assert.ok(labels.includes("bare-deno -"));
    assert.deepEqual(labels.filter((label) => label.startsWith("tessera-memory-deno")), [
      "tessera-memory-deno read",
      "tessera-memory-deno write",
      "tessera-memory-deno new",
    ]);
  });

  it("keeps what --only matches and the bare servers of its runtimes", () => {
    assert.deepEqual(planPairs(servers, /tessera-memory-bun (read|new)/).map(pairLabel), [
      "bare-bun -",
      "tessera-memory-bun read",
      "tessera-memory-bun new",
    ]);
  });
});

describe("schedule()", () => {
  const pairs = planPairs(allServers(["memory"]), /^(bare-deno|bare-bun|tessera-memory-deno)/);

  it("spreads each bare server's runs over the whole run, one run a visit", () => {
    const visits = schedule(pairs, 3).map((visit) => `${pairLabel(visit.pair)} x${visit.runs}`);
    assert.deepEqual(visits, [
      "bare-deno - x1",
      "bare-bun - x1",
      "tessera-memory-deno read x3",
      "tessera-memory-deno write x3",
      "bare-deno - x1",
      "bare-bun - x1",
      "tessera-memory-deno new x3",
      "bare-deno - x1",
      "bare-bun - x1",
    ]);
  });

  it("measures the bare servers first when there is one run", () => {
    assert.deepEqual(schedule(pairs, 1).map((visit) => pairLabel(visit.pair)), [
      "bare-deno -",
      "bare-bun -",
      "tessera-memory-deno read",
      "tessera-memory-deno write",
      "tessera-memory-deno new",
    ]);
  });

  it("gives every pair all its runs", () => {
    for (const runs of [1, 2, 3, 5]) {
      const counts = new Map<string, number>();
      for (const visit of schedule(pairs, runs)) {
        const label = pairLabel(visit.pair);
        counts.set(label, (counts.get(label) ?? 0) + visit.runs);
      }
      assert.deepEqual([...counts.values()], pairs.map(() => runs), `runs ${runs}`);
    }
  });
});
