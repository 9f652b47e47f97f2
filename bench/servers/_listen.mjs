// Serves a Node request listener on 127.0.0.1 with a port the OS picks, and
// prints the port for the harness.
import { createServer } from "node:http";

/**
 * Serves `listener` (a Node request listener, such as an Express app) until
 * the process is stopped.
 *
 * @param {import("node:http").RequestListener} listener
 */
export function listen(listener) {
  const server = createServer(listener);
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    console.log(
      `listening on 127.0.0.1:${typeof address === "object" ? address?.port : address}`,
    );
  });
}
