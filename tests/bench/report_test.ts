import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allServers, type ServerSpec, type Workload } from "../../bench/_plan.ts";
import {
  buildRows,
  checkTargets,
  failuresText,
  floodTable,
  formatCount,
  formatRatio,
  isBounded,
  markdownTable,
  type PairResult,
  replaceBlock,
  resultsTable,
  targetsText,
} from "../../bench/_report.ts";

const SERVERS = allServers(["memory", "file"]);

function server(id: string): ServerSpec {
  const found = SERVERS.find((spec) => spec.id === id);
  if (found === undefined) throw new Error(`no server ${id}`);
  return found;
}

function result(
  id: string,
  workload: Workload | null,
  rps: number[],
): PairResult {
  return {
    server: server(id),
    workload,
    runs: rps.map((value, round) => ({
      round,
      rps: value,
      p99Ms: 2,
      cpuPercent: 90,
      cpuUsPerRequest: 20,
    })),
    failure: null,
  };
}

const RESULTS: PairResult[] = [
  result("floor-memory-deno", "read", [40_000, 44_000, 40_000]),
  result("tessera-memory-deno", "read", [30_000, 33_000, 36_000]),
  result("bare-deno", null, [60_000, 50_000, 70_000]),
  result("bare-node", null, [20_000]),
  result("hono-sessions-memory-deno", "read", [3_000]),
  result("tessera-file-deno", "write", [6_000]),
  result("express-session-file-node", "write", [200]),
  result("hono-deno", null, [45_000]),
];

describe("buildRows()", () => {
  const rows = buildRows(RESULTS);
  const row = (id: string) => rows.find((candidate) => candidate.result.server.id === id)!;

  it("puts the servers without sessions first, then each workload, keeping the run's order", () => {
    assert.deepEqual(rows.map((candidate) => candidate.result.server.id), [
      "bare-deno",
      "bare-node",
      "hono-deno",
      "floor-memory-deno",
      "tessera-memory-deno",
      "hono-sessions-memory-deno",
      "tessera-file-deno",
      "express-session-file-node",
    ]);
  });

  it("takes the median, the range, and the median of the rounds' ratios to the bare server", () => {
    const memory = row("tessera-memory-deno");
    assert.equal(memory.rps, 33_000);
    assert.equal(memory.minRps, 30_000);
    assert.equal(memory.maxRps, 36_000);
    // Rounds: 30/60, 33/50, 36/70; the ratio of the medians would be 0.55.
    assert.equal(memory.vsBare, 36 / 70);
    assert.equal(row("hono-deno").vsBare, 0.75);
  });

  it("divides a Tessera row by its floor round by round and takes the median", () => {
    const memory = row("tessera-memory-deno");
    // Rounds: 30/40, 33/44, 36/40.
    assert.equal(memory.vsFloor, 0.75);
    assert.equal(memory.cpuVsFloor, 1);
    assert.equal(memory.floor?.result.server.id, "floor-memory-deno");
    assert.equal(row("floor-memory-deno").vsFloor, null);
    assert.equal(
      row("tessera-file-deno").vsFloor,
      null,
      "its floor was not measured",
    );
  });

  it("pairs rounds by number, skipping a round one side lacks", () => {
    const [, floor, tessera] = buildRows([
      result("bare-bun", null, [100_000, 100_000, 100_000]),
      {
        ...result("floor-memory-bun", "read", []),
        runs: [
          {
            round: 0,
            rps: 10_000,
            p99Ms: 1,
            cpuPercent: 90,
            cpuUsPerRequest: 10,
          },
          {
            round: 2,
            rps: 20_000,
            p99Ms: 1,
            cpuPercent: 90,
            cpuUsPerRequest: 10,
          },
        ],
      },
      result("tessera-memory-bun", "read", [9_000, 1, 10_000]),
    ]);
    assert.equal(floor?.result.server.kind, "floor");
    // Rounds 0 and 2 only: 0.9 and 0.5.
    assert.equal(tessera?.vsFloor, 0.7);
  });

  it("divides the bare server's CPU time per request by the row's", () => {
    const cpu = (
      id: string,
      workload: Workload | null,
      us: number,
    ): PairResult => ({
      ...result(id, workload, [1000]),
      runs: [{
        round: 0,
        rps: 1000,
        p99Ms: 1,
        cpuPercent: 50,
        cpuUsPerRequest: us,
      }],
    });
    const [, memory] = buildRows([
      cpu("bare-bun", null, 10),
      cpu("tessera-memory-bun", "read", 40),
    ]);
    assert.equal(memory?.cpuVsBare, 0.25);
  });

  it("compares Tessera with its peer on the same runtime by plain req/s", () => {
    const memory = row("tessera-memory-deno");
    assert.equal(memory.vsPeer?.ratio, 11);
    assert.equal(
      memory.vsPeer?.peer.result.server.id,
      "hono-sessions-memory-deno",
    );
    assert.equal(row("hono-sessions-memory-deno").vsPeer, null);
  });

  it("compares Tessera with a peer on another runtime through each one's bare server", () => {
    // 0.1 of Deno's ceiling against 0.01 of Node's.
    assert.equal(row("tessera-file-deno").vsPeer?.ratio, 10);
  });

  it("gives a failed pair no figures and no ratios", () => {
    const failed = {
      ...result("tessera-memory-bun", "read", []),
      failure: "check failed",
    };
    const [only] = buildRows([failed, result("bare-bun", null, [1000])]).filter(
      (candidate) => candidate.result.server.id === "tessera-memory-bun",
    );
    assert.equal(only?.rps, 0);
    assert.equal(only?.vsBare, null);
  });

  it("gives no ratio without a bare server of the runtime", () => {
    assert.equal(
      buildRows([result("tessera-memory-bun", "read", [1000])])[0]?.vsBare,
      null,
    );
  });
});

describe("resultsTable()", () => {
  it("writes one line per row with the figures formatted", () => {
    const table = resultsTable(buildRows(RESULTS));
    const lines = table.split("\n");
    assert.equal(lines.length, 2 + RESULTS.length);
    assert.match(lines[0]!, /^\| server +\| runtime \| workload \| +req\/s \|/);
    const memory = lines.find((line) => line.startsWith("| Tessera MemoryStore"))!;
    assert.deepEqual(
      memory.split("|").slice(1, -1).map((cell) => cell.trim()),
      [
        "Tessera MemoryStore",
        "Deno",
        "read",
        "33,000",
        "30,000-36,000",
        "2.00",
        "90%",
        "20",
        "0.51",
        "1.00",
        "0.75",
        "1.00",
        "11.0x",
      ],
    );
  });

  it("marks a failed pair", () => {
    const failed = {
      ...result("tessera-memory-deno", "read", []),
      failure: "check failed",
    };
    assert.match(
      resultsTable(buildRows([failed])),
      /\| Tessera MemoryStore \| Deno +\| read +\| failed \|/,
    );
  });
});

describe("failuresText()", () => {
  it("lists each failed pair with its reason", () => {
    const failed = {
      ...result("tessera-memory-deno", "write", []),
      failure: "counter did not move",
    };
    assert.equal(
      failuresText(buildRows([failed, ...RESULTS])),
      "Failed, so not measured:\n\n- Tessera MemoryStore (Deno) write: counter did not move",
    );
  });

  it("is empty when nothing failed", () => {
    assert.equal(failuresText(buildRows(RESULTS)), "");
  });
});

describe("markdownTable()", () => {
  it("pads every column to its widest cell, right-aligning where asked", () => {
    assert.equal(
      markdownTable(["a", "number"], [["long cell", "1"], ["b", "22"]], [
        false,
        true,
      ]),
      [
        "| a         | number |",
        "| --------- | -----: |",
        "| long cell |      1 |",
        "| b         |     22 |",
      ].join("\n"),
    );
  });
});

describe("formatCount() and formatRatio()", () => {
  it("groups thousands and rounds", () => {
    assert.equal(formatCount(1234567.6), "1,234,568");
    assert.equal(formatCount(999), "999");
  });

  it("keeps two significant figures at least", () => {
    assert.equal(formatRatio(0.6234), "0.62");
    assert.equal(formatRatio(12.34), "12.3");
    assert.equal(formatRatio(123.4), "123");
  });
});

describe("checkTargets() and targetsText()", () => {
  const checks = checkTargets(buildRows(RESULTS));

  it("checks each Tessera row against its engine's target and its peer", () => {
    assert.deepEqual(
      checks.map((
        check,
      ) => [check.row.result.server.id, check.what, check.goal, check.met]),
      [
        ["tessera-memory-deno", "vs floor", 0.9, false],
        ["tessera-memory-deno", "vs bare", 0.6, false],
        ["tessera-memory-deno", "vs peer", 10, true],
        ["tessera-file-deno", "vs floor", 0.85, false],
        ["tessera-file-deno", "vs bare", 0.1, true],
        ["tessera-file-deno", "vs peer", 10, true],
      ],
    );
  });

  it("lists the missed targets with their figures", () => {
    assert.equal(
      targetsText(checks),
      [
        "Targets met: 3 of 6.",
        "",
        "Missed:",
        "",
        "- Tessera MemoryStore (Deno) read vs floor >= 0.9: 0.75",
        "- Tessera MemoryStore (Deno) read vs bare >= 0.6: 0.51",
        "- Tessera FileStore (Deno) write vs floor >= 0.85: not measured",
      ].join("\n"),
    );
  });

  it("leaves out the peer target when the peer was not part of the run", () => {
    const partial = checkTargets(buildRows([
      result("bare-deno", null, [100]),
      result("tessera-memory-deno", "new", [50]),
    ]));
    assert.deepEqual(partial.map((check) => check.what), ["vs bare"]);
  });

  it("holds a row without a secret to its floor only", () => {
    const plain = checkTargets(buildRows([
      result("bare-deno", null, [100]),
      result("floor-memory-plain-deno", "write", [50]),
      result("tessera-memory-plain-deno", "write", [48]),
    ]));
    assert.deepEqual(
      plain.map((check) => [check.what, check.goal, check.met]),
      [
        ["vs floor", 0.9, true],
      ],
    );
  });
});

describe("isBounded() and floodTable()", () => {
  const steps = (values: number[]) =>
    values.map((rssKib, index) => ({
      requests: (index + 1) * 100_000,
      rssKib,
    }));

  it("calls RSS that only moves up and down with garbage collection bounded", () => {
    assert.equal(
      isBounded(steps([170, 209, 181, 178, 234, 240, 178, 182, 190, 240])),
      true,
    );
  });

  it("calls RSS that rises with the requests growing", () => {
    assert.equal(
      isBounded(steps([170, 230, 290, 350, 410, 470, 530, 590, 650, 710])),
      false,
    );
  });

  it("has no verdict without steps", () => {
    assert.equal(isBounded([]), false);
  });

  it("shows the RSS after the first step, at the end, the peak, the growth and the verdict", () => {
    const table = floodTable([
      {
        runtime: "deno",
        steps: steps([102_400, 110_000, 112_640]),
        peakKib: 120_000,
        seconds: 41.2,
        failure: null,
      },
      {
        runtime: "bun",
        steps: steps([102_400, 204_800, 307_200]),
        peakKib: 307_200,
        seconds: 9,
        failure: null,
      },
    ]);
    const [deno, bun] = table.split("\n").slice(2);
    assert.match(
      deno!,
      /\| Deno +\| +100 MiB \(100,000\) \| 110 MiB \(300,000\) \| +117 MiB \| +\+10% \| +41 s \| bounded \|/,
    );
    assert.match(bun!, /\+200% \| +9 s \| growing \|/);
  });

  it("marks a failed flood", () => {
    const table = floodTable([
      {
        runtime: "deno",
        steps: [],
        peakKib: 0,
        seconds: 0,
        failure: "server died",
      },
    ]);
    assert.match(table, /\| Deno +\| +failed \|/);
  });
});

describe("replaceBlock()", () => {
  it("replaces what stands between the markers and keeps the rest", () => {
    const text = "# T\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nafter\n";
    assert.equal(
      replaceBlock(text, "new table\n"),
      "# T\n\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\n\nafter\n",
    );
  });

  it("refuses a text without the markers", () => {
    assert.throws(() => replaceBlock("# T\n", "x"), { message: /bench:start/ });
  });
});
