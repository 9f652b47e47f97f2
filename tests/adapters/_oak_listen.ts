// Oak's own server on loopback, for the tests: listen() as an app would.

import { type AddressInfo, connect, createServer } from "node:net";
import type { Application } from "@oakserver/oak";
import type { TestServer } from "../_server.ts";

/**
 * Serves `app` with Oak's listen() on 127.0.0.1. Oak's Node server path
 * (npm's Oak 14 on Deno) reports the port it was asked for, not the one the
 * OS gave, so a free port is picked first; and neither server path ends
 * listen()'s promise on abort, so close() does not wait for it. The Node
 * path also announces "listen" before the socket is bound.
 */
// deno-lint-ignore no-explicit-any
export async function listen(app: Application<any>): Promise<TestServer> {
  const port = await freePort();
  const controller = new AbortController();
  const listening = new Promise<void>((resolve) => {
    app.addEventListener("listen", () => resolve(), { once: true });
  });
  app.listen({ hostname: "127.0.0.1", port, signal: controller.signal }).catch(() => {});
  await listening;
  await accepting(port);
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      controller.abort();
      return Promise.resolve();
    },
  };
}

async function accepting(port: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Cannot reach the Oak test server as nothing accepts on port ${port}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
