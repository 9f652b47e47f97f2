// The directories file sessions are measured in, named by their file system.
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import type { Place } from "./_plan.ts";

/** The type of the file system `dir` is on (`ext4`, `tmpfs`), from /proc/mounts. */
export function fileSystemOf(dir: string): string {
  const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((line) => line.split(" "))
    .filter((fields) => fields.length >= 3).map(([, point, type]) => ({
      point: point!.replace(/\\040/g, " "),
      type: type!,
    }));
  const real = resolve(dir);
  let best = { point: "", type: "unknown" };
  for (const mount of mounts) {
    const inside = real === mount.point ||
      real.startsWith(
        mount.point.endsWith("/") ? mount.point : `${mount.point}/`,
      );
    if (inside && mount.point.length >= best.point.length) best = mount;
  }
  return best.type;
}

/**
 * The places the file rows run in: the `--root` directories, or the OS
 * temp dir and /dev/shm when that is a tmpfs; each named by its file
 * system type (a second one of a type gets a number).
 */
export function findPlaces(roots: readonly string[] | null): Place[] {
  const dirs = roots ??
    [
      tmpdir(),
      ...(existsSync("/dev/shm") && fileSystemOf("/dev/shm") === "tmpfs" ? ["/dev/shm"] : []),
    ];
  const seen = new Map<string, number>();
  return dirs.map((dir) => {
    if (!existsSync(dir)) {
      throw new Error(
        `Cannot run the benchmark in '${dir}' as it does not exist: create it or pass another '--root'`,
      );
    }
    const type = fileSystemOf(dir);
    const count = (seen.get(type) ?? 0) + 1;
    seen.set(type, count);
    return { name: count === 1 ? type : `${type}-${count}`, dir: resolve(dir) };
  });
}
