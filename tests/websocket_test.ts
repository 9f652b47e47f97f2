// WebSocket upgrades through withSessions on a real server, with the
// runtime's own WebSocket client: Bun's `if (server.upgrade(req)) return;`
// and Deno's 101 response. The handler reads the session to authenticate
// the socket, as applications do, and sends sessionCookieHeader(req) with
// the upgrade response. A TCP proxy between client and server records the
// response the client got, the only place its Set-Cookie can be seen.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { getSession, MemoryStore, sessionCookieHeader, withSessions } from "../mod.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import { RUNTIME } from "./_server.ts";

interface Data {
  user: string;
  sockets: number;
  list: unknown[];
}

/** What the application does on a socket request, before it upgrades. */
async function prepareSocket(
  req: Request,
): Promise<{ greeting: string; setCookie: string | null }> {
  const session = await getSession<Data>(req);
  const path = new URL(req.url).pathname;
  const greeting = `hello ${session.get("user") ?? "anonymous"}`;
  session.set("sockets", (session.get("sockets") ?? 0) + 1);
  if (path === "/socket/cycle") {
    // A value changed into a cycle: the save after the upgrade fails.
    const list: unknown[] = [];
    session.set("list", list);
    list.push(list);
  }
  // Without the cookie a new session cannot reach the client; "quiet"
  // leaves it out, to see the save after the upgrade on its own.
  const setCookie = path === "/socket" ? await sessionCookieHeader(req) : null;
  return { greeting, setCookie };
}

/** The HTTP part of the application: log in, and show the session. */
async function page(req: Request): Promise<Response> {
  const session = await getSession<Data>(req);
  if (new URL(req.url).pathname === "/login") session.set("user", "ada");
  return Response.json(Object.fromEntries(session.items()));
}

interface BunSocket {
  data: { greeting: string };
  send(message: string): void;
}
interface BunUpgrader {
  upgrade(req: Request, options: { headers: HeadersInit; data: { greeting: string } }): boolean;
}
interface BunRuntime {
  serve(options: {
    hostname: string;
    port: number;
    fetch(req: Request, server: BunUpgrader): Promise<Response | undefined>;
    websocket: {
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
}

/** The application on this runtime, served on 127.0.0.1 and a free port. */
function serveApplication(logger: RecordingLogger, store: MemoryStore): {
  url: string;
  close(): Promise<void>;
} {
  const options = { store, logger };
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun !== undefined) {
    const fetch = withSessions(async (req: Request, server: BunUpgrader) => {
      if (!new URL(req.url).pathname.startsWith("/socket")) return await page(req);
      const { greeting, setCookie } = await prepareSocket(req);
      const headers = setCookie === null ? {} : { "Set-Cookie": setCookie };
      if (server.upgrade(req, { headers, data: { greeting } })) return;
      return new Response("Upgrade failed", { status: 400 });
    }, options);
    const server = bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch,
      websocket: {
        open: (ws) => ws.send(ws.data.greeting),
        message: (ws, message) => ws.send(`echo ${message}`),
      },
    });
    return { url: `http://127.0.0.1:${server.port}`, close: async () => await server.stop(true) };
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    withSessions(async (req) => {
      if (!new URL(req.url).pathname.startsWith("/socket")) return await page(req);
      const { greeting, setCookie } = await prepareSocket(req);
      const { socket, response } = Deno.upgradeWebSocket(req);
      if (setCookie !== null) response.headers.append("Set-Cookie", setCookie);
      socket.onopen = () => socket.send(greeting);
      socket.onmessage = (event) => socket.send(`echo ${event.data}`);
      return response;
    }, options),
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** A TCP proxy that records the head of the first response on each connection. */
async function recordingProxy(port: number): Promise<{
  port: number;
  heads: string[];
  close(): Promise<void>;
}> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => sockets.delete(socket));
    }
    let head: string | null = "";
    upstream.on("data", (chunk: Uint8Array) => {
      if (head !== null) {
        head += new TextDecoder("latin1").decode(chunk);
        const end = head.indexOf("\r\n\r\n");
        if (end !== -1) {
          heads.push(head.slice(0, end));
          head = null;
        }
      }
      client.write(chunk);
    });
    client.on("data", (chunk: Uint8Array) => upstream.write(chunk));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    heads,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type WebSocketWithHeaders = new (
  url: string,
  options: { headers: Record<string, string> },
) => WebSocket;

/** Opens a socket, sends "ping", and returns the first two messages. */
function talk(url: string, cookie?: string): Promise<string[]> {
  // Both runtimes' WebSocket take request headers as a second argument.
  const socket = new (WebSocket as unknown as WebSocketWithHeaders)(url, {
    headers: cookie === undefined ? {} : { cookie },
  });
  const messages: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`No answer on ${url}`)), 10_000);
    socket.onerror = () => reject(new Error(`The socket to ${url} failed`));
    socket.onmessage = (event) => {
      messages.push(String(event.data));
      if (messages.length === 1) socket.send("ping");
      else {
        clearTimeout(timer);
        socket.close();
        resolve(messages);
      }
    };
  });
}

function setCookieOf(head: string): string | null {
  const line = head.split("\r\n").find((line) => /^set-cookie:/i.test(line));
  return line === undefined ? null : line.slice(line.indexOf(":") + 1).trim();
}

describe(`withSessions(): WebSocket upgrades on ${RUNTIME}`, () => {
  const logger = new RecordingLogger();
  const store = new MemoryStore();
  let app: { url: string; close(): Promise<void> };
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let socketBase: string;

  before(async () => {
    app = serveApplication(logger, store);
    proxy = await recordingProxy(Number(new URL(app.url).port));
    socketBase = `ws://127.0.0.1:${proxy.port}`;
  });
  after(async () => {
    await proxy.close();
    await app.close();
  });

  it("gives a new session's cookie with the upgrade response, and saves the session", async () => {
    const messages = await talk(`${socketBase}/socket`);
    assert.deepEqual(messages, ["hello anonymous", "echo ping"]);
    const head = proxy.heads.at(-1)!;
    assert.match(head, /^HTTP\/1\.1 101 /);
    const setCookie = setCookieOf(head);
    assert.match(
      setCookie ?? "",
      /^sessionid=[a-z0-9]{32}; Expires=.*; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    const cookie = setCookie!.split(";")[0]!;
    const { body } = await new Browser(app.url).text("/", { headers: { cookie } });
    assert.deepEqual(JSON.parse(body), { sockets: 1 });
    assert.deepEqual(logger.errors, []);
  });

  it("authenticates the socket with the session of a logged-in user, and saves what it changed", async () => {
    const browser = new Browser(app.url);
    await browser.text("/login");
    const key = browser.cookies.get("sessionid")!;
    const messages = await talk(`${socketBase}/socket`, `sessionid=${key}`);
    assert.deepEqual(messages, ["hello ada", "echo ping"]);
    assert.match(setCookieOf(proxy.heads.at(-1)!) ?? "", new RegExp(`^sessionid=${key}; `));
    assert.deepEqual(JSON.parse((await browser.text("/")).body), { user: "ada", sockets: 1 });
  });

  it("saves a session changed before an upgrade that sent no cookie", async () => {
    const browser = new Browser(app.url);
    await browser.text("/login");
    const key = browser.cookies.get("sessionid")!;
    const messages = await talk(`${socketBase}/socket/quiet`, `sessionid=${key}`);
    assert.deepEqual(messages, ["hello ada", "echo ping"]);
    assert.equal(setCookieOf(proxy.heads.at(-1)!), null);
    assert.deepEqual(JSON.parse((await browser.text("/")).body), { user: "ada", sockets: 1 });
  });

  it("only logs a save that fails after the upgrade; the socket and the server go on", async () => {
    const browser = new Browser(app.url);
    await browser.text("/login");
    const key = browser.cookies.get("sessionid")!;
    const before = logger.errors.length;
    const messages = await talk(`${socketBase}/socket/cycle`, `sessionid=${key}`);
    assert.deepEqual(messages, ["hello ada", "echo ping"]);
    assert.equal(logger.errors.length, before + 1);
    assert.match(
      logger.errors.at(-1)!.message,
      /^Cannot save the session as JSON cannot represent 'list'.*cycle/,
    );
    assert.deepEqual(JSON.parse((await browser.text("/")).body), { user: "ada" }, "unchanged");
  });

  it("survives many upgrades at once, each new session saved with the cookie its client got", async () => {
    const count = 50;
    const sizeBefore = store.size;
    const firstHead = proxy.heads.length;
    const results = await Promise.all(
      Array.from({ length: count }, () => talk(`${socketBase}/socket`)),
    );
    assert.ok(results.every((messages) => messages[0] === "hello anonymous"));
    const keys = proxy.heads.slice(firstHead).map((head) =>
      /^sessionid=([a-z0-9]{32});/.exec(setCookieOf(head) ?? "")?.[1]
    );
    assert.equal(new Set(keys).size, count);
    for (const key of keys) {
      assert.deepEqual(JSON.parse((await store.load(key!))!.data), { sockets: 1 });
    }
    assert.equal(store.size, sizeBefore + count);
    console.log(
      `${RUNTIME}: ${count} concurrent upgrades, ${count} sessions saved with the cookie sent, 0 errors`,
    );
  });
});
