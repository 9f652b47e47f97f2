// The demo in a real headless Chromium (Debian's, installed with apt-get when
// missing), driven by playwright-core from this process over the DevTools
// protocol: first visit, reload, login, logout and "remember me", with the
// cookies the browser really holds checked at each step.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { createDemo } from "../examples/demo.ts";
import { FileStore } from "../mod.ts";
import { serve, type TestServer } from "./_server.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  // Another apt-get may hold the lock: wait for it rather than fail.
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  for (const args of [["update", "-qq", ...lock], ["install", "-y", "-qq", ...lock, "chromium"]]) {
    const result = spawnSync("apt-get", args, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      throw new Error(`Cannot install chromium: apt-get ${args[0]} exited with ${result.status}`);
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), "tessera-browser-"));
const profile = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
const store = new FileStore({ path: dir });
let server: TestServer;
let child: ChildProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;

before(async () => {
  ensureChromium();
  server = serve(createDemo(store));
  child = spawn(CHROMIUM, [
    ...FLAGS,
    `--user-data-dir=${profile}`,
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let text = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const found = /DevTools listening on (ws:\S+)/.exec(text);
      if (found) resolve(found[1]!);
    });
    child.on("exit", (code) => reject(new Error(`chromium exited with ${code}: ${text}`)));
  });
  browser = await chromium.connectOverCDP(endpoint);
  context = browser.contexts()[0]!;
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  if (child?.pid !== undefined && child.exitCode === null) {
    // Its profile is removed below only once it can no longer write there.
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid, "SIGKILL");
    await exited;
  }
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
});

/** The session cookie Chromium holds for the demo, if any. */
async function sessionCookie() {
  const cookies = await context.cookies(server.url);
  assert.ok(cookies.length <= 1, JSON.stringify(cookies));
  return cookies.find((cookie) => cookie.name === "sessionid");
}

const text = (selector: string) => page.locator(selector).innerText();
const daysFromNow = (seconds: number) => (seconds * 1000 - Date.now()) / 86_400_000;

async function logIn(name: string, remember: boolean): Promise<void> {
  await page.fill('input[name="user"]', name);
  if (remember) await page.check('input[name="remember"]');
  await Promise.all([page.waitForURL(`${server.url}/`), page.click("text=Log in")]);
}

/** Logs out; resolves with the Cookie header the browser sent with the page after it. */
async function logOut(): Promise<string | undefined> {
  const [next] = await Promise.all([
    page.waitForRequest(/loggedOut=/),
    page.waitForURL(/loggedOut=/),
    page.click("text=Log out"),
  ]);
  return (await next.allHeaders())["cookie"];
}

describe("the demo in Chromium", () => {
  let firstKey = "";

  it("on a first visit, sets an HttpOnly, SameSite=Lax cookie for two weeks", async () => {
    await page.goto(`${server.url}/`);
    const cookie = (await sessionCookie())!;
    assert.match(cookie.value, /^[a-z0-9]{32}$/);
    assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path, cookie.secure], [
      true,
      "Lax",
      "/",
      false,
    ]);
    assert.ok(Math.abs(daysFromNow(cookie.expires) - 14) < 0.01, String(cookie.expires));
    assert.equal(await text("code.key"), cookie.value);
    assert.match(await text(".happened"), /first visit in this session/);
    assert.match(await text(".visits"), /visited this page 1 time\./);
    assert.match(await text("body"), /shows the session key only because it is a demo/);
    // HttpOnly, seen from the page's own script.
    assert.equal(await text("#script-sees"), '""');
    assert.ok(existsSync(store.fileOf(cookie.value)));
    firstKey = cookie.value;
  });

  it("on a reload, sends the cookie back and counts the visit in the same session", async () => {
    await page.reload();
    assert.equal((await sessionCookie())!.value, firstKey);
    assert.match(await text(".visits"), /visited this page 2 times\./);
    assert.match(await text(".happened"), /sent the cookie back/);
  });

  let loggedInKey = "";

  it("at login, moves to a new key and keeps the cookie only until the browser closes", async () => {
    await logIn("Ada", false);
    const cookie = (await sessionCookie())!;
    assert.notEqual(cookie.value, firstKey);
    assert.equal(cookie.expires, -1); // a browser-session cookie
    assert.equal(cookie.httpOnly, true);
    assert.equal(existsSync(store.fileOf(firstKey)), false);
    assert.ok(existsSync(store.fileOf(cookie.value)));
    const happened = await text(".happened");
    assert.match(happened, /new key/);
    assert.ok(happened.includes(firstKey));
    assert.match(happened, /session fixation/);
    assert.match(happened, /browser-session cookie/);
    assert.match(await text("body"), /Logged in as Ada\./);
    assert.match(await text("body"), /when the browser closes/);
    assert.doesNotMatch(await text("body"), /\d{4}-\d\d-\d\dT\d\d:/);
    assert.match(await text(".visits"), /visited this page 3 times/);
    loggedInKey = cookie.value;
  });

  it("at logout, deletes the session file and the cookie; the next page starts afresh", async () => {
    // The browser dropped the cookie: the page after logout went without one.
    assert.equal(await logOut(), undefined);
    assert.equal(existsSync(store.fileOf(loggedInKey)), false);
    assert.match(await text(".happened"), /deleted your session: its file .+ no longer exists/);
    assert.match(await text(".visits"), /visited this page 1 time\./);
    const cookie = (await sessionCookie())!;
    assert.notEqual(cookie.value, loggedInKey);
    assert.ok(existsSync(store.fileOf(cookie.value)));
    assert.ok(await page.isVisible('input[name="user"]'));
  });

  it("with remember me, keeps the cookie for 30 days and says until when", async () => {
    await logIn("Grace", true);
    const cookie = (await sessionCookie())!;
    assert.ok(Math.abs(daysFromNow(cookie.expires) - 30) < 0.01, String(cookie.expires));
    assert.match(await text(".happened"), /You ticked "remember me"/);
    assert.match(await text("body"), /Max-Age=2592000/);
    assert.match(await text("body"), /UTC \(in 30 days\)/);
    assert.match(await text("body"), /Logged in as Grace\./);
    assert.equal(await logOut(), undefined);
    assert.equal(existsSync(store.fileOf(cookie.value)), false);
    console.log(`[browser] Chromium ${browser.version()}: 5 steps, cookies checked at each`);
  });
});
