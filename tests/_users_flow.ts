// The "your devices" flow of UserSessions, shared by the test files of its
// indexes: a browser keeping its cookie, the routes of a devices page, and
// the flow through them.

import assert from "node:assert/strict";
import { getSession, type SessionOptions, type UserSessions, withSessions } from "../mod.ts";

export class Browser {
  cookie: string | null = null;
  constructor(readonly base: string) {}
  async get(path: string): Promise<string> {
    const response = await fetch(this.base + path, {
      headers: this.cookie === null ? {} : { cookie: this.cookie },
    });
    const setCookie = response.headers.get("set-cookie");
    if (setCookie !== null) {
      this.cookie = /Max-Age=0/.test(setCookie) ? null : setCookie.split(";")[0]!;
    }
    return await response.text();
  }
}

// The routes of a "your devices" page.
export function app(
  users: UserSessions,
  options: SessionOptions,
): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession(req);
    const user = session.get("_auth_user_id") as string | undefined;
    switch (url.pathname) {
      case "/login":
        session.set("_auth_user_id", url.searchParams.get("user")!);
        session.set("ua", url.searchParams.get("ua") ?? "");
        await session.cycleKey();
        return new Response(url.searchParams.get("user")!);
      case "/devices":
        if (user === undefined) return new Response("anonymous", { status: 403 });
        return Response.json({
          current: await users.idOf(session.sessionKey),
          devices: await users.list(user),
        });
      case "/others":
        return new Response(String(await users.revokeOthers(user!, session.sessionKey)));
      case "/logout":
        await session.flush();
        return new Response("bye");
      case "/touch":
        session.set("touched", Date.now());
        break;
    }
    return new Response(user ?? "anonymous");
  }, options);
}

interface Devices {
  current: string;
  devices: { id: string; createdAt: number; savedAt: number; metadata: { ua?: string } }[];
}

// The "your devices" flow: list, revoke one, revoke the others, log out,
// and log out everywhere, through the server at `base`.
export async function devicesFlow(users: UserSessions, base: string): Promise<void> {
  const phone = new Browser(base);
  const laptop = new Browser(base);
  const tablet = new Browser(base);
  const other = new Browser(base);
  await phone.get("/login?user=42&ua=Phone");
  await laptop.get("/login?user=42&ua=Laptop");
  await tablet.get("/login?user=42&ua=Tablet");
  await other.get("/login?user=7&ua=Other");

  const list = JSON.parse(await tablet.get("/devices")) as Devices;
  assert.deepEqual(list.devices.map((d) => d.metadata.ua).sort(), [
    "Laptop",
    "Phone",
    "Tablet",
  ]);
  const mine = list.devices.find((d) => d.id === list.current)!;
  assert.equal(mine.metadata.ua, "Tablet");
  for (const device of list.devices) {
    assert.ok(device.createdAt <= device.savedAt);
    // The id is opaque: no cookie value appears in the page.
    for (const browser of [phone, laptop, tablet]) {
      assert.ok(!JSON.stringify(list).includes(browser.cookie!.split("=")[1]!));
    }
  }

  // Revoke the phone: its next request is anonymous, the others stay.
  const phoneId = list.devices.find((d) => d.metadata.ua === "Phone")!.id;
  assert.equal(await users.revoke("42", phoneId), true);
  assert.equal(await users.revoke("42", phoneId), false);
  assert.equal(await phone.get("/me"), "anonymous");
  assert.equal(await laptop.get("/me"), "42");

  // "Log out my other devices" from the tablet.
  assert.equal(await tablet.get("/others"), "1");
  assert.equal(await laptop.get("/me"), "anonymous");
  assert.equal(await tablet.get("/me"), "42");
  assert.equal((await users.list("42")).length, 1);

  // Logging out removes the session from the list.
  await tablet.get("/logout");
  assert.deepEqual(await users.list("42"), []);

  // Log out everywhere: ends every session of 42, and only of 42.
  await phone.get("/login?user=42&ua=Phone");
  await laptop.get("/login?user=42&ua=Laptop");
  assert.equal(await users.logoutEverywhere("42"), 1);
  assert.equal(await phone.get("/me"), "anonymous");
  assert.equal(await laptop.get("/me"), "anonymous");
  assert.equal(await other.get("/me"), "7");
  // A login after it works.
  await phone.get("/login?user=42&ua=Phone");
  assert.equal(await phone.get("/me"), "42");
  assert.equal((await users.list("42")).length, 1);
}
