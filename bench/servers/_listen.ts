// Serves a fetch handler on 127.0.0.1 with a port the OS picks, on Deno or
// Bun, and prints the port for the harness.

type Handler = (req: Request) => Response | Promise<Response>;

interface BunRuntime {
  serve(
    options: { hostname: string; port: number; fetch: Handler },
  ): { port: number };
}

/** Serves `handler` until the process is stopped. */
export function listen(handler: Handler): void {
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun !== undefined) {
    const server = bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: handler,
    });
    announce(server.port);
    return;
  }
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => announce(port),
  }, handler);
}

function announce(port: number): void {
  console.log(`listening on 127.0.0.1:${port}`);
}
