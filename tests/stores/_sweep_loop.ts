// Sweeps a directory back to back from a process of its own, as a cron job
// would, until a stop file appears (or 30 s pass). Prints "ready" once it
// runs, "judged <file>" each time it has judged a file expired, and at the
// end one JSON line with what its sweeps did.
//
// After judging a file it pauses 5 ms before taking it aside: that widens the
// window in which a concurrent save can make the file live again from
// microseconds to milliseconds, and the "judged" line lets a test put a save
// right in it.
//
// args: <session dir> <stop file> <ms added to the clock the sweeps judge by>

import { existsSync, writeSync } from "node:fs";
import process from "node:process";
import { sweepFiles, type SweepTarget } from "../../src/stores/_file_sweep.ts";

const [path, stopFile, shift] = process.argv.slice(2) as [string, string, string];
// FileStore's defaults; ".tmp-" is its temp file mark.
const target: SweepTarget = {
  path,
  prefix: "sessionid",
  tempMark: ".tmp-",
  tombstoneMark: ".gone",
  staleTempAfter: 60_000,
  cookieAge: 1_209_600,
};
const pause = new Int32Array(new SharedArrayBuffer(4));
const total = { sweeps: 0, removed: 0, restored: 0, failed: 0, errors: [] as string[] };
const hooks = {
  beforeTake(file: string): void {
    // Written at once, not buffered: the test reacts to it during the pause.
    writeSync(1, `judged ${file}\n`);
    Atomics.wait(pause, 0, 0, 5);
  },
  beforeRestore(): void {
    total.restored++;
  },
};
const deadline = Date.now() + 30_000;
writeSync(1, "ready\n");
// existsSync between sweeps: this process does nothing else meanwhile.
while (!existsSync(stopFile) && Date.now() < deadline) {
  const report = await sweepFiles(target, { now: Date.now() + Number(shift) }, hooks);
  total.sweeps++;
  total.removed += report.removed;
  total.failed += report.failed;
  total.errors.push(...report.errors.slice(0, 5 - total.errors.length));
}
writeSync(1, `${JSON.stringify(total)}\n`);
