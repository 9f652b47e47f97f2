import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BUSY_LOAD_PER_CORE, judgeLoad } from "../../bench/_load.ts";

describe("judgeLoad()", () => {
  it("publishes a complete run that started on a quiet machine", () => {
    const verdict = judgeLoad(0.6, 2, true, false);
    assert.deepEqual([verdict.perCore, verdict.busy, verdict.publish], [
      0.3,
      false,
      true,
    ]);
    assert.equal(
      verdict.text,
      "Quiet machine: load average 0.60 at the start on 2 cores (0.30 per core).",
    );
  });

  it("counts exactly half a core's load per core as quiet, and more as busy", () => {
    assert.equal(BUSY_LOAD_PER_CORE, 0.5);
    assert.equal(judgeLoad(1, 2, true, false).publish, true);
    assert.equal(judgeLoad(1.02, 2, true, false).publish, false);
  });

  it("keeps a busy machine's figures out of the results and says how to force them", () => {
    const verdict = judgeLoad(3.11, 2, true, false);
    assert.deepEqual([verdict.busy, verdict.publish], [true, false]);
    assert.equal(
      verdict.text,
      "Busy machine: load average 3.11 at the start on 2 cores (1.55 per core), above 0.5 per core; results not published (pass --force to publish them anyway).",
    );
  });

  it("publishes a forced busy run with its load beside the figures", () => {
    const verdict = judgeLoad(3.11, 2, true, true);
    assert.equal(verdict.publish, true);
    assert.match(
      verdict.text,
      /^Forced run on a busy machine: load average 3\.11 .*1\.55 per core/,
    );
  });

  it("never publishes a partial run, quiet or forced", () => {
    assert.equal(judgeLoad(0, 2, false, false).publish, false);
    assert.equal(judgeLoad(0, 2, false, true).publish, false);
    assert.equal(
      judgeLoad(5, 2, false, true).text.endsWith("above 0.5 per core."),
      true,
    );
  });

  it("treats a machine reporting no cores as one core", () => {
    assert.equal(judgeLoad(0.8, 0, true, false).busy, true);
  });
});
