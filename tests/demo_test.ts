import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDemo } from "../examples/demo.ts";
import { FileStore } from "../mod.ts";
import { Browser } from "./_browser.ts";
import { serve } from "./_server.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-demo-"));
const store = new FileStore({ path: dir });
const server = serve(createDemo(store));
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function login(browser: Browser, user: string, remember: boolean): Promise<Response> {
  const form = new URLSearchParams({ user });
  if (remember) form.set("remember", "on");
  return browser.fetch("/login", { method: "POST", body: form });
}

describe("the demo app", () => {
  it("counts visits and shows the session key and the file it lives in", async () => {
    const browser = new Browser(server.url);
    const first = await browser.text("/");
    assert.match(first.body, /visited this page <strong>1<\/strong> time\./);
    const key = browser.cookies.get("sessionid")!;
    assert.match(key, /^[a-z0-9]{32}$/);
    assert.ok(first.body.includes(`<code class="key">${key}</code>`));
    assert.match(first.body, /only because it is a demo/);
    assert.match(first.body, /first visit in this session/);
    assert.ok(first.body.includes(join(dir, `sessionid${key}`)));
    assert.ok(existsSync(join(dir, `sessionid${key}`)));
    assert.match((await browser.text("/")).body, /<strong>2<\/strong> times/);
  });

  it("logs in with a new key and the name, and logs out by deleting the session", async () => {
    const browser = new Browser(server.url);
    await browser.text("/");
    const before = browser.cookies.get("sessionid")!;
    const response = await login(browser, "Ada <script>", false);
    assert.equal(response.status, 303);
    const after = browser.cookies.get("sessionid")!;
    assert.notEqual(after, before);
    assert.equal(existsSync(join(dir, `sessionid${before}`)), false);
    const home = await browser.text("/");
    assert.match(home.body, /Logged in as <strong>Ada &#60;script&#62;<\/strong>/);
    assert.match(home.body, /when the browser closes/);
    assert.match(home.body, /new key<\/strong> \(it was <code>[a-z0-9]{32}<\/code>/);
    assert.ok(home.body.includes(`it was <code>${before}</code>`));
    assert.match(home.body, /session fixation/);
    assert.match(home.body, /browser-session cookie/);
    assert.doesNotMatch(home.body, /\d{4}-\d\d-\d\dT/); // no raw ISO times
    assert.doesNotMatch(home.response.headers.get("set-cookie")!, /Max-Age/);

    const logout = await browser.fetch("/logout", { method: "POST" });
    assert.equal(logout.status, 303);
    assert.match(logout.headers.get("set-cookie")!, /^sessionid=; Expires=Thu, 01 Jan 1970/);
    assert.equal(browser.cookies.has("sessionid"), false);
    assert.equal(existsSync(join(dir, `sessionid${after}`)), false);
    const afterLogout = await browser.text(logout.headers.get("location")!.replace(server.url, ""));
    assert.match(afterLogout.body, /<strong>1<\/strong> time\./);
    assert.ok(
      afterLogout.body.includes(`${join(dir, `sessionid${after}`)}</code> no longer exists`),
    );
  });

  it("remembers a user for 30 days when asked", async () => {
    const browser = new Browser(server.url);
    await login(browser, "Grace", true);
    const home = await browser.text("/");
    assert.match(home.response.headers.get("set-cookie")!, /Max-Age=2592000/);
    assert.match(home.body, /Logged in as <strong>Grace<\/strong>/);
    assert.match(home.body, /You ticked "remember me"/);
    assert.match(home.body, /in 30 days\)/);
  });

  it("refuses an empty name and answers unknown pages with 404", async () => {
    const browser = new Browser(server.url);
    assert.equal((await login(browser, "  ", false)).status, 400);
    assert.equal((await browser.fetch("/nowhere")).status, 404);
  });

  it("keeps only session files, and the tombstones of logouts, in its directory", () => {
    for (const name of readdirSync(dir)) assert.match(name, /^sessionid[a-z0-9]{32}(\.gone)?$/);
  });
});
