// File system errors of the file engine, worded so that no message names a
// session file (and so a session key).

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
 * The file system's own message names the file, and so the session key: it
 * is replaced by one that names only the directory and the error code (or,
 * for an error without one such as Deno's `NotCapable`, its name).
 */
export function fileError(action: string, directory: string, error: unknown): Error {
  const code = errorCode(error);
  const wrapped = new Error(
    `Cannot ${action} in '${directory}': ${code ?? errorName(error) ?? "unknown error"}`,
  );
  if (code !== undefined) (wrapped as Error & { code?: string }).code = code;
  return wrapped;
}

function errorName(error: unknown): string | undefined {
  const name = error instanceof Error ? error.name : undefined;
  return name === "Error" ? undefined : name;
}
