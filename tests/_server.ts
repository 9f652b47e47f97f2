// A real HTTP server on 127.0.0.1 and a port the OS picks, on Deno or Bun.

type Handler = (req: Request) => Response | Promise<Response>;

/** A running test server: its base URL and how to stop it. */
export interface TestServer {
  url: string;
  close(): Promise<void>;
}

interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface BunRuntime {
  serve(options: { hostname: string; port: number; fetch: Handler }): BunServer;
}

/** Serves `handler` on 127.0.0.1 until `close()` is called. */
export function serve(handler: Handler): TestServer {
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun !== undefined) {
    const server = bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
    return {
      url: `http://127.0.0.1:${server.port}`,
      close: async () => {
        await server.stop(true);
      },
    };
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

/** The name of the runtime running the tests. */
export const RUNTIME: "bun" | "deno" = "Bun" in globalThis ? "bun" : "deno";
