// The one handler every session server runs, so that each library does the
// same work: a visit counter on GET /.
//
// A session without a counter gets one (a new session, answered "new 1").
// On a known session the "read" and "new" workloads read the counter
// ("read N") and the "write" workload increments it ("write N+1"). The
// harness checks these answers before it measures a server.

/** The workloads, as the harness names them. */
export const WORKLOADS = ["read", "write", "new"];

/**
 * The workload a server was started for, from its arguments.
 *
 * @param {string | undefined} value
 * @returns {"read" | "write" | "new"}
 */
export function workloadOf(value) {
  if (value === "read" || value === "write" || value === "new") return value;
  throw new TypeError(
    `Cannot start the server as the workload must be one of ${
      WORKLOADS.join(", ")
    }: current value is ${value}`,
  );
}

/**
 * What the handler does with the counter it found (`undefined` for none):
 * the value to store (`undefined`: store nothing) and the body to answer.
 *
 * @param {unknown} count
 * @param {"read" | "write" | "new"} workload
 * @returns {{ store: number | undefined, body: string }}
 */
export function visit(count, workload) {
  if (typeof count !== "number") return { store: 1, body: "new 1" };
  if (workload === "write") {
    return { store: count + 1, body: `write ${count + 1}` };
  }
  return { store: undefined, body: `read ${count}` };
}

/** The secret every library signs or encrypts its cookie with: 32 bytes and more. */
export const SECRET = "bench-secret-0123456789abcdef-0123456789abcdef";
