// Runs a script under tests/fixtures/ as a child process on the runtime that
// runs the tests, reads the URL it prints first, and kills it by its pid.

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../_server.ts";

/** A running fixture server. */
export interface ChildServer {
  url: string;
  pid: number;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` to its pid and waits until it has exited. */
  kill(signal: "SIGKILL" | "SIGTERM"): Promise<void>;
}

/** Starts `tests/fixtures/<name>` with `args` and waits for its URL (at most `timeoutMs`). */
export function startFixture(
  name: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<ChildServer> {
  const script = fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
  const runtimeArgs = RUNTIME === "deno"
    ? ["run", "--allow-all", script, ...args]
    : [script, ...args];
  const child = spawn(process.execPath, runtimeArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise<ChildServer>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop(child);
      reject(new Error(`${name} printed no URL within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before printing its URL: ${stderr}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const line = stdout.split("\n")[0]!;
      if (!stdout.includes("\n") || !line.startsWith("http://127.0.0.1:")) return;
      clearTimeout(timer);
      resolve({
        url: line.trim(),
        pid: child.pid!,
        stderr: () => stderr,
        async kill(signal) {
          if (child.exitCode === null && child.signalCode === null) {
            process.kill(child.pid!, signal);
          }
          await exited;
        },
      });
    });
  });
}

function stop(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
}
