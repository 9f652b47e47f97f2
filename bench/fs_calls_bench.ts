// CPU per session-file read and write with node:fs's promise calls against
// its synchronous calls (FileStore's sequence of calls, without its logic).
// Run in a directory of the place to measure:
//   deno run -A bench/fs_calls_bench.ts /dev/shm; bun bench/fs_calls_bench.ts /dev/shm
import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { lstat, open, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";

const root = process.argv[2] ?? "/dev/shm";
const N = Number(process.argv[3] ?? 5000);
const dir = mkdtempSync(join(root, "fscalls-"));
const file = join(dir, "sessionidabcdefghijklmnopqrstuvwxyz012345");
const READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const text = `${Date.now() + 3600_000}\ns1:${"x".repeat(43)}:${JSON.stringify({ user: 42 })}`;
const expires = (Date.now() + 3600_000) / 1000;
let counter = 0;

function cpu(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function time(
  name: string,
  run: () => unknown | Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < 300; i++) await run();
  const wall = performance.now();
  const start = cpu();
  for (let i = 0; i < N; i++) await run();
  const us = (cpu() - start) / N;
  const wallUs = ((performance.now() - wall) * 1000) / N;
  console.log(
    `${name.padEnd(28)} ${us.toFixed(1).padStart(6)} µs CPU ${
      wallUs.toFixed(1).padStart(6)
    } µs wall`,
  );
}

function writeSyncPath(): void {
  const temp = `${file}.tmp-${counter++}`;
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, text);
    futimesSync(fd, Date.now() / 1000, expires);
  } finally {
    closeSync(fd);
  }
  statSync(file);
  renameSync(temp, file);
  try {
    lstatSync(`${file}.gone`);
  } catch { /* missing */ }
}

async function writeAsyncPath(): Promise<void> {
  const temp = `${file}.tmp-${counter++}`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(text);
    await handle.utimes(Date.now() / 1000, expires);
  } finally {
    await handle.close();
  }
  await stat(file);
  await rename(temp, file);
  await lstat(`${file}.gone`).catch(() => {});
}

function readSyncPath(): string {
  const fd = openSync(file, READ);
  try {
    const stats = fstatSync(fd);
    const buffer = new Uint8Array(stats.size + 1);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    closeSync(fd);
    try {
      lstatSync(`${file}.gone`);
    } catch { /* missing */ }
  }
}

async function readAsyncPath(): Promise<string> {
  const handle = await open(file, READ);
  try {
    await handle.stat();
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
    await lstat(`${file}.gone`).catch(() => {});
  }
}

const runtime = "Bun" in globalThis ? "Bun" : "Deno";
console.log(`${runtime}, ${N} calls each, in ${root}`);
closeSync(openSync(file, "w", 0o600));
await time("read, async node:fs", readAsyncPath);
await time("read, sync node:fs", readSyncPath);
await time("write, async node:fs", writeAsyncPath);
await time("write, sync node:fs", writeSyncPath);
rmSync(dir, { recursive: true });
