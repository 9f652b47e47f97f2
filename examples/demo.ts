/**
 * Tessera's demo: a visit counter, a login that cycles the session key, a
 * logout that deletes the session, a "remember me" box, and a panel that
 * shows the session key, its expiry, its file and its cookie, with a line
 * of plain words at each step saying what happened and why. It runs on the
 * default engine, one file per session in the OS temp dir.
 *
 *     npm start               # Deno, http://127.0.0.1:8000/
 *     npm run start:bun       # Bun
 *     PORT=9000 npm start     # another port (0: one the OS picks)
 *
 * @module
 */

import { existsSync } from "node:fs";
import process from "node:process";
import { FileStore, getSession, type Session, withSessions } from "../mod.ts";

interface DemoData {
  visits: number;
  user: string;
  /** What the last form did, told once on the next page. */
  event: { kind: "login"; previousKey: string | null };
}

const REMEMBER_SECONDS = 30 * 24 * 60 * 60;
const KEY = /^[a-z0-9]{32}$/;

/** The demo app on `store`, as a fetch handler for Deno.serve or Bun.serve. */
export function createDemo(store: FileStore): (req: Request) => Promise<Response> {
  return withSessions(async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const session = await getSession<DemoData>(req);
    if (req.method === "POST" && url.pathname === "/login") return await login(req, session);
    if (req.method === "POST" && url.pathname === "/logout") {
      const key = session.sessionKey;
      await session.flush(); // deletes the file; the middleware deletes the cookie
      const next = new URL("/", url);
      if (key !== null) next.searchParams.set("loggedOut", key);
      return Response.redirect(next, 303);
    }
    if (req.method === "GET" && url.pathname === "/") return await home(url, session, store);
    return new Response("Not Found", { status: 404 });
  }, { store });
}

async function login(req: Request, session: Session<DemoData>): Promise<Response> {
  const form = await req.formData();
  const user = String(form.get("user") ?? "").trim().slice(0, 40);
  if (user === "") return page("Log in", `<p>Please give a name. <a href="/">Back</a></p>`, 400);
  const previousKey = session.sessionKey;
  await session.cycleKey(); // a fresh key at login defeats session fixation
  session.set("user", user);
  session.set("event", { kind: "login", previousKey });
  // 0: the cookie ends with the browser; otherwise it lasts 30 days.
  session.setExpiry(form.get("remember") === "on" ? REMEMBER_SECONDS : 0);
  return Response.redirect(new URL("/", req.url), 303);
}

async function home(url: URL, session: Session<DemoData>, store: FileStore): Promise<Response> {
  const visits = (session.get("visits") ?? 0) + 1;
  session.set("visits", visits);
  const event = session.pop("event");
  // Saved here, not only after the handler, so that this page can show the
  // key of a session that is new on this request.
  await session.save();
  const key = session.sessionKey!;
  const user = session.get("user");
  const browserSession = session.getExpireAtBrowserClose();
  const expires = session.getExpiryDate();

  const happened: string[] = [];
  const loggedOut = url.searchParams.get("loggedOut");
  if (loggedOut !== null && KEY.test(loggedOut)) {
    happened.push(
      `You logged out. The server deleted your session: its file <code>${
        escapeHtml(store.fileOf(loggedOut))
      }</code> ${
        existsSync(store.fileOf(loggedOut)) ? "still exists (unexpected)" : "no longer exists"
      }, and the response told your browser to delete the cookie. Even someone who had copied the old key could no longer use it. This visit started a new, empty session.`,
    );
  } else if (event?.kind === "login") {
    happened.push(
      `You logged in, and your session got a <strong>new key</strong>${
        event.previousKey === null
          ? ""
          : ` (it was <code>${event.previousKey}</code>, whose file is now deleted)`
      }. The data moved with it. This defeats <em>session fixation</em>: an attacker who planted a key in your browser before you logged in holds a key that now leads nowhere.`,
      browserSession
        ? `You did not tick "remember me", so the cookie is a <strong>browser-session cookie</strong>: it has no expiry date, and the browser forgets it when it closes. (The server still keeps the session for the usual two weeks at most.)`
        : `You ticked "remember me", so the cookie carries an expiry date 30 days ahead: the browser keeps it across restarts, and you stay logged in until then.`,
    );
  } else if (visits === 1) {
    happened.push(
      `This is your first visit in this session: the server created a session, saved it to a file, and sent your browser a cookie with its key.`,
    );
  } else {
    happened.push(
      `Your browser sent the cookie back, so the server found your session file and counted this visit in it.`,
    );
  }

  const account = user === undefined
    ? `<form method="post" action="/login">
         <label>Name <input name="user" maxlength="40" required autofocus></label>
         <label><input type="checkbox" name="remember"> Remember me for 30 days</label>
         <button>Log in</button>
       </form>`
    : `<p>Logged in as <strong>${escapeHtml(user)}</strong>.</p>
       <form method="post" action="/logout"><button>Log out</button></form>`;
  const cookie = browserSession
    ? `<li><code>sessionid=&lt;key&gt;</code>: the key, and nothing else; the data stays on the server.</li>
       <li>No <code>Max-Age</code> or <code>Expires</code>: a browser-session cookie, gone when the browser closes.</li>`
    : `<li><code>sessionid=&lt;key&gt;</code>: the key, and nothing else; the data stays on the server.</li>
       <li><code>Max-Age=${session.getExpiryAge()}</code> and <code>Expires</code>: the browser keeps it until ${
      readable(expires)
    }.</li>`;
  return page(
    "Tessera demo",
    `<div class="happened">${happened.map((line) => `<p>${line}</p>`).join("")}</div>
     <p class="visits">You have visited this page <strong>${visits}</strong> time${
      visits === 1 ? "" : "s"
    }.</p>
     ${account}
     <h2>Your session</h2>
     <p class="note">This page shows the session key only because it is a demo. A real site never
       shows it: whoever has the key is logged in as you.</p>
     <dl>
       <dt>Key</dt><dd><code class="key">${key}</code></dd>
       <dt>Expires</dt><dd>${
      browserSession
        ? `when the browser closes (the server forgets it by ${readable(expires)} at the latest)`
        : readable(expires)
    }</dd>
       <dt>File on the server</dt><dd><code>${escapeHtml(store.fileOf(key))}</code></dd>
     </dl>
     <h2>Your cookie</h2>
     <ul>
       ${cookie}
       <li><code>HttpOnly</code>: scripts on the page cannot read it, so an injected script cannot steal it. Here, <code>document.cookie</code> sees <code id="script-sees">(checking)</code>.</li>
       <li><code>SameSite=Lax</code>: the browser does not send it with forms posted from other sites, which blocks most cross-site request forgery.</li>
       <li><code>Path=/</code>: sent with every page of this site.</li>
       <li>No <code>Secure</code>, because this demo runs on plain <code>http://</code>; a real site on HTTPS sets <code>cookieSecure: true</code> so it is never sent unencrypted.</li>
     </ul>
     <script>document.getElementById("script-sees").textContent = JSON.stringify(document.cookie);</script>`,
  );
}

// "Mon, 30 Dec 2026, 17:10 UTC (in 30 days)": the server's clock, in words.
function readable(date: Date): string {
  const text = new Intl.DateTimeFormat("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: "UTC",
  }).format(date);
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const [amount, unit] = seconds >= 2 * 86_400
    ? [Math.round(seconds / 86_400), "day"]
    : seconds >= 2 * 3_600
    ? [Math.round(seconds / 3_600), "hour"]
    : [Math.max(0, Math.round(seconds / 60)), "minute"];
  return `${text} UTC (in ${amount} ${unit}${amount === 1 ? "" : "s"})`;
}

function page(title: string, body: string, status = 200): Response {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem; }
  form { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; }
  dt { font-weight: 600; } dd { margin: 0 0 .5rem; word-break: break-all; }
  code { background: #f3f3f3; padding: .1rem .3rem; border-radius: .2rem; }
  .happened { background: #eef6ee; border-left: 4px solid #4a4; padding: .25rem 1rem; }
  .note { color: #555; font-size: .9rem; }
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
  const announce = (actual: number) => {
    console.log(`Tessera demo on http://127.0.0.1:${actual}/`);
    console.log(`Sessions are files named ${store.prefix}<key> in ${store.path}`);
  };
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun !== undefined) announce(bun.serve({ hostname: "127.0.0.1", port, fetch: handler }).port);
  else {Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: (addr) => announce(addr.port),
    }, handler);}
}
