// File system errors of the file engine, worded so that no message names a
// session file (and so a session key), and so that each says what to do.

/** The `code` of a file system error (`ENOENT`, `EACCES`, ...), if any. */
export function errorCode(error: unknown): string | undefined {
  return (error as { code?: unknown } | null)?.code as string | undefined;
}

/** Whether the error says the file (or a directory on its path) is not there. */
export function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * The Deno permission (`read` or `write`) whose absence caused `error`, or
 * undefined for any other error. Deno 2 throws `NotCapable` for a permission
 * it was not given (Deno 1 threw `PermissionDenied`), with a message such as
 * `Requires read access to "<file>", run again with the --allow-read flag`.
 */
export function missingDenoPermission(
  error: unknown,
  fallback: "read" | "write",
): DenoPermission | undefined {
  if (!(error instanceof Error) || errorCode(error) !== undefined) return undefined;
  if (error.name !== "NotCapable" && error.name !== "PermissionDenied") return undefined;
  // "all": Deno asks for --allow-all under /dev, /proc and /sys.
  const kind = /Requires (read|write|all) access/.exec(error.message)?.[1];
  if (kind === "read" || kind === "write" || kind === "all") return kind;
  return /--allow-/.test(error.message) || error.name === "NotCapable" ? fallback : undefined;
}

/** A Deno permission the file engine needs. */
export type DenoPermission = "read" | "write" | "all";

/** The message for a Deno permission that was not given for `directory`. */
export function denoPermissionMessage(
  action: string,
  directory: string,
  permission: DenoPermission,
): string {
  return permission === "all"
    ? `Cannot ${action} in '${directory}' as Deno grants access to it only with all permissions: run again with --allow-all, or choose another directory`
    : `Cannot ${action} in '${directory}' as Deno has no ${permission} permission for it: run again with --allow-${permission}=${directory}`;
}

// What to do about the codes a misconfigured deployment meets.
const HINTS: Record<string, string> = {
  EACCES: "give the server's user read and write access to the directory, or choose another one",
  EPERM: "give the server's user read and write access to the directory, or choose another one",
  EROFS: "the file system is read-only: keep sessions on a writable one",
  ENOSPC: "the disk is full: free space, or run clearsessions to remove expired sessions",
  EDQUOT: "the user's disk quota is used up: free space, or run clearsessions",
};

/**
 * The file system's own message names the file, and so the session key: it
 * is replaced by one that names only the directory and the error code (or,
 * for an error without one, its name), and what to do about it.
 */
export function fileError(action: string, directory: string, error: unknown): Error {
  const code = errorCode(error);
  const permission = missingDenoPermission(
    error,
    /^(read|check|list)/.test(action) ? "read" : "write",
  );
  if (permission !== undefined) {
    return new Error(denoPermissionMessage(action, directory, permission));
  }
  const hint = code === undefined ? undefined : HINTS[code];
  const wrapped = new Error(
    `Cannot ${action} in '${directory}': ${code ?? errorName(error) ?? "unknown error"}${
      hint === undefined ? "" : `; ${hint}`
    }`,
  );
  if (code !== undefined) (wrapped as Error & { code?: string }).code = code;
  return wrapped;
}

function errorName(error: unknown): string | undefined {
  const name = error instanceof Error ? error.name : undefined;
  return name === "Error" ? undefined : name;
}
