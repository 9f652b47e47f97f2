import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseWrk, requestsPerSecond, wrkArgs, wrkProblem } from "../../bench/_wrk.ts";

const OUTPUT = `Running 5s test @ http://127.0.0.1:41234/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   9.00ms   90.00%
  250000 requests in 5.00s, 30.00MB read
Requests/sec:  50000.00
WRK_RESULT requests=250000 duration_us=5000000 p50_us=1100 p99_us=2500 max_us=9000 connect=0 read=0 write=0 status=0 timeout=0
`;

describe("parseWrk()", () => {
  it("reads the report line among wrk's own output", () => {
    const result = parseWrk(OUTPUT);
    assert.equal(result.requests, 250_000);
    assert.equal(result.durationUs, 5_000_000);
    assert.equal(result.p99Us, 2500);
    assert.deepEqual(result.errors, { connect: 0, read: 0, write: 0, status: 0, timeout: 0 });
  });

  it("fails with wrk's output when the report line is missing", () => {
    assert.throws(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"), {
      message: /no WRK_RESULT line:\nunable to connect/,
    });
  });

  it("fails naming a missing field", () => {
    assert.throws(() => parseWrk("WRK_RESULT requests=1 duration_us=2\n"), {
      message: /'p50_us' is missing/,
    });
  });
});

describe("requestsPerSecond()", () => {
  it("divides the requests by the run's own duration", () => {
    assert.equal(requestsPerSecond(parseWrk(OUTPUT)), 50_000);
  });

  it("is 0 for a run of no duration", () => {
    assert.equal(requestsPerSecond({ ...parseWrk(OUTPUT), durationUs: 0 }), 0);
  });
});

describe("wrkProblem()", () => {
  it("is null for a clean run", () => {
    assert.equal(wrkProblem(parseWrk(OUTPUT)), null);
  });

  it("names error answers, socket errors and timeouts", () => {
    const result = parseWrk(OUTPUT.replace("read=0", "read=2").replace("status=0", "status=5"));
    assert.equal(wrkProblem(result), "5 answers >= 400, 2 socket errors");
    assert.equal(
      wrkProblem({ ...result, requests: 0, errors: { ...result.errors, timeout: 1 } }),
      "5 answers >= 400, 2 socket errors, 1 timeouts, no request answered",
    );
  });
});

describe("wrkArgs()", () => {
  it("runs one thread and passes the script's arguments after --", () => {
    assert.deepEqual(
      wrkArgs({
        url: "http://127.0.0.1:1/",
        seconds: 5,
        connections: 64,
        script: "cookies.lua",
        scriptArgs: ["cookies.txt"],
      }),
      [
        "-t1",
        "-c64",
        "-d5s",
        "--timeout",
        "10s",
        "-s",
        "cookies.lua",
        "http://127.0.0.1:1/",
        "--",
        "cookies.txt",
      ],
    );
  });

  it("has no -- without script arguments", () => {
    const args = wrkArgs({ url: "u", seconds: 1, connections: 1, script: "plain.lua" });
    assert.equal(args.includes("--"), false);
  });
});
