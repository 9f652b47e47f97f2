// PostgreSQL stopped mid-load and started again, for each client: requests
// that need the store get a 500 with a logged error (never a 2xx for a lost
// write, never a hang), requests that do not touch the session are
// unaffected, service comes back by itself when PostgreSQL does, with the
// client settings the docs give, and no increment a client was told about
// is lost across the restart.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getSession, PostgresStore, withSessions } from "../mod.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import { freshTable, POSTGRES_CLIENTS, startPostgres } from "./_postgres.ts";
import { RUNTIME, serve } from "./_server.ts";

const postgres = await startPostgres();
after(() => postgres.destroy());

const BROWSERS = 6;
// A request slower than this counts as hanging: a refused connection fails
// a query at once while the server is away.
const HANG_MS = 3000;

interface Sample {
  browser: number;
  path: string;
  status: number;
  body: string;
  ms: number;
}

// Each browser alternates a session request and a session-free one for `ms`.
async function load(browsers: Browser[], ms: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const end = Date.now() + ms;
  await Promise.all(browsers.map(async (browser, index) => {
    while (Date.now() < end) {
      for (const path of ["/incr", "/ping"]) {
        const started = performance.now();
        const { response, body } = await browser.text(path);
        samples.push({
          browser: index,
          path,
          status: response.status,
          body,
          ms: performance.now() - started,
        });
      }
    }
  }));
  return samples;
}

function only(samples: Sample[], path: string): Sample[] {
  return samples.filter((sample) => sample.path === path);
}

/**
 * Per browser, the counts its 2xx answers reported, in order, must rise by
 * one at a time, except across a 5xx, after which a write the client was
 * not told about may have landed: a lost acknowledged write would make a
 * count repeat or fall, a new session start again at 1.
 */
function assertNothingLost(samples: Sample[]): number {
  let acknowledged = 0;
  for (let b = 0; b < BROWSERS; b++) {
    const mine = only(samples, "/incr").filter((s) => s.browser === b);
    let last = 0;
    let failedSince = false;
    for (const sample of mine) {
      if (sample.status !== 200) {
        failedSince = true;
        continue;
      }
      const count = Number(sample.body);
      acknowledged++;
      if (last !== 0) {
        if (failedSince) assert.ok(count > last, `browser ${b}: ${count} after ${last}`);
        else assert.equal(count, last + 1, `browser ${b}`);
      }
      last = count;
      failedSince = false;
    }
    assert.ok(last > 0, `browser ${b} got answers`);
  }
  return acknowledged;
}

for (const kind of POSTGRES_CLIENTS) {
  describe(`PostgreSQL down (${kind.name})`, () => {
    it("answers 500 while PostgreSQL is stopped, serves session-free requests, and recovers with nothing lost", async () => {
      const handle = await kind.connect(postgres.url);
      const logger = new RecordingLogger();
      const store = new PostgresStore({ client: handle.client, table: freshTable() });
      const handler = withSessions(async (req) => {
        if (new URL(req.url).pathname === "/ping") return new Response("pong");
        const session = await getSession<{ n: number }>(req);
        session.set("n", (session.get("n") ?? 0) + 1);
        return new Response(String(session.get("n")));
      }, { store, logger });
      const server = serve(handler);
      try {
        const browsers = Array.from({ length: BROWSERS }, () => new Browser(server.url));

        const up = await load(browsers, 300);
        assert.deepEqual(new Set(up.map((s) => s.status)), new Set([200]));
        assert.equal(logger.errors.length, 0);

        // Stopped under load: the requests in flight meet the shutdown.
        const during = load(browsers, 1200);
        await new Promise((resolve) => setTimeout(resolve, 200));
        await postgres.stop();
        const down = await during;
        const failed = only(down, "/incr").filter((s) => s.status !== 200);
        assert.ok(failed.length >= BROWSERS, `${failed.length} failed session requests`);
        assert.deepEqual(new Set(failed.map((s) => s.status)), new Set([500]));
        assert.deepEqual(new Set(only(down, "/ping").map((s) => s.status)), new Set([200]));
        assert.ok(
          Math.max(...down.map((s) => s.ms)) < HANG_MS,
          `no request hangs: ${JSON.stringify(down.filter((s) => s.ms >= HANG_MS))}`,
        );
        assert.equal(logger.errors.length, failed.length, "each 500 is logged once");
        for (const entry of logger.errors) {
          assert.match(entry.message, /the session store failed/);
          assert.match(String(entry.error), /in PostgreSQL/);
        }

        await postgres.restart();
        const deadline = Date.now() + 15_000;
        let recovered = false;
        while (!recovered && Date.now() < deadline) {
          const { response } = await browsers[0]!.text("/incr");
          recovered = response.status === 200;
          if (!recovered) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(recovered, "service came back within 15 s of PostgreSQL");
        const back = await load(browsers, 300);
        assert.deepEqual(new Set(back.map((s) => s.status)), new Set([200]));
        const first = [...up, ...down];
        const acknowledged = assertNothingLost([...first, ...back]);
        console.log(
          `[postgres down] ${kind.name} on ${RUNTIME}: ${acknowledged} increments acknowledged, ${failed.length} answered 500 while down, 0 lost across the restart`,
        );
      } finally {
        await server.close();
        await handle.close();
        if (postgres.pid === null) await postgres.restart();
      }
    });
  });
}
