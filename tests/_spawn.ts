// Runs a TypeScript file in a child process of the runtime running the tests.

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** The command line that runs `script` with `args` on this runtime. */
export function scriptCommand(script: string, args: string[]): [string, string[]] {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno !== undefined) {
    // The permissions of the clearsessions shebang line.
    const permissions = ["--allow-read", "--allow-write", "--allow-env=TMPDIR,TMP,TEMP"];
    return [deno.execPath(), ["run", ...permissions, script, ...args]];
  }
  return [process.execPath, [script, ...args]];
}

/** A child running `script`; its output is gathered as text. */
export interface Child {
  process: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code once the child has exited. */
  exited: Promise<number | null>;
}

/** Starts `script` with `args` in a child process. */
export function start(script: string, args: string[], env?: Record<string, string>): Child {
  const [command, commandArgs] = scriptCommand(script, args);
  const child = spawn(command, commandArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(env !== undefined ? { env: { ...process.env, ...env } } : {}),
  });
  const result: Child = {
    process: child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve(code));
    }),
  };
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (result.stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (result.stderr += text));
  return result;
}

/** Runs `script` with `args` to its end, stopping it after `timeoutMs`. */
export async function run(
  script: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = start(script, args);
  const timer = setTimeout(() => child.process.kill(), timeoutMs);
  try {
    const code = await child.exited;
    return { code, stdout: child.stdout, stderr: child.stderr };
  } finally {
    clearTimeout(timer);
  }
}
