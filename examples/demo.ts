/**
 * Tessera's demo: a visit counter, a login that cycles the session key, a
 * logout that flushes it, a "remember me" box, and a panel that shows the
 * session key, its expiry and the file it lives in. It runs on the default
 * engine, one file per session in the OS temp dir.
 *
 *     npm start               # Deno, http://127.0.0.1:8000/
 *     npm run start:bun       # Bun
 *     PORT=9000 npm start     # another port
 *
 * @module
 */

import process from "node:process";
import { FileStore, getSession, type Session, withSessions } from "../mod.ts";

interface DemoData {
  visits: number;
  user: string;
}

const REMEMBER_SECONDS = 30 * 24 * 60 * 60;

/** The demo app on `store`, as a fetch handler for Deno.serve or Bun.serve. */
export function createDemo(store: FileStore): (req: Request) => Promise<Response> {
  return withSessions(async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const session = await getSession<DemoData>(req);
    if (req.method === "POST" && url.pathname === "/login") return await login(req, session);
    if (req.method === "POST" && url.pathname === "/logout") {
      await session.flush(); // deletes the file; the middleware deletes the cookie
      return Response.redirect(new URL("/", url), 303);
    }
    if (req.method === "GET" && url.pathname === "/") return await home(session, store);
    return new Response("Not Found", { status: 404 });
  }, { store });
}

async function login(req: Request, session: Session<DemoData>): Promise<Response> {
  const form = await req.formData();
  const user = String(form.get("user") ?? "").trim().slice(0, 40);
  if (user === "") return page("Log in", `<p>Please give a name. <a href="/">Back</a></p>`, 400);
  await session.cycleKey(); // a fresh key at login defeats session fixation
  session.set("user", user);
  // 0: the cookie ends with the browser; otherwise it lasts 30 days.
  session.setExpiry(form.get("remember") === "on" ? REMEMBER_SECONDS : 0);
  return Response.redirect(new URL("/", req.url), 303);
}

async function home(session: Session<DemoData>, store: FileStore): Promise<Response> {
  const visits = (session.get("visits") ?? 0) + 1;
  session.set("visits", visits);
  // Saved here, not only after the handler, so that this page can show the
  // key of a session that is new on this request.
  await session.save();
  const key = session.sessionKey!;
  const user = session.get("user");
  const account = user === undefined
    ? `<form method="post" action="/login">
         <label>Name <input name="user" maxlength="40" required autofocus></label>
         <label><input type="checkbox" name="remember"> Remember me for 30 days</label>
         <button>Log in</button>
       </form>`
    : `<p>Logged in as <strong>${escapeHtml(user)}</strong>.</p>
       <form method="post" action="/logout"><button>Log out</button></form>`;
  const expiry = session.getExpireAtBrowserClose()
    ? `when the browser closes (the server keeps it until ${session.getExpiryDate().toISOString()})`
    : session.getExpiryDate().toISOString();
  return page(
    "Tessera demo",
    `<p class="visits">You have visited this page <strong>${visits}</strong> time${
      visits === 1 ? "" : "s"
    }.</p>
     ${account}
     <h2>Your session</h2>
     <dl>
       <dt>Key</dt><dd><code>${key}</code></dd>
       <dt>Expires</dt><dd>${expiry}</dd>
       <dt>File</dt><dd><code>${escapeHtml(store.fileOf(key))}</code></dd>
     </dl>`,
  );
}

function page(title: string, body: string, status = 200): Response {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; }
  form { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; }
  dt { font-weight: 600; } dd { margin: 0 0 .5rem; word-break: break-all; }
  code { background: #f3f3f3; padding: .1rem .3rem; border-radius: .2rem; }
</style></head>
<body><h1>${title}</h1>${body}</body></html>`;
  return new Response(html, { status, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface BunRuntime {
  serve(options: { hostname: string; port: number; fetch: (req: Request) => Promise<Response> }): {
    port: number;
  };
}

if (import.meta.main) {
  const port = Number(process.env.PORT ?? 8000);
  const store = new FileStore();
  const handler = createDemo(store);
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun !== undefined) bun.serve({ hostname: "127.0.0.1", port, fetch: handler });
  else Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
  console.log(`Tessera demo on http://127.0.0.1:${port}/`);
  console.log(`Sessions are files named ${store.prefix}<key> in ${store.path}`);
}
