// Redis stopped mid-load, for each client: requests that need the store get
// a 500 with a logged error (never a 2xx for a lost write, never a hang),
// requests that do not touch the session are unaffected, and service comes
// back by itself when Redis does, with the client settings docs/engines.md gives.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getSession, RedisStore, withSessions } from "../mod.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import { REDIS_CLIENTS, startRedis } from "./_redis.ts";
import { serve } from "./_server.ts";

const redis = await startRedis();
after(() => redis.stop());

const BROWSERS = 6;
// A request slower than this counts as hanging: with the offline queue off,
// a client fails a command at once while Redis is away.
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

// Every 2xx /incr answered the count after its write: per browser, the
// answers run 1, 2, 3... from the first one of its current session.
function assertCountsConsecutive(samples: Sample[]): void {
  for (let b = 0; b < BROWSERS; b++) {
    const counts = only(samples, "/incr").filter((s) => s.browser === b).map((s) => Number(s.body));
    assert.ok(counts.length > 0, `browser ${b} got answers`);
    for (let i = 1; i < counts.length; i++) assert.equal(counts[i], counts[i - 1]! + 1);
  }
}

for (const kind of REDIS_CLIENTS) {
  describe(`Redis down (${kind.name})`, () => {
    it("answers 500 while Redis is stopped, serves session-free requests, and recovers by itself", async () => {
      const handle = await kind.connect(redis.url);
      const logger = new RecordingLogger();
      const handler = withSessions(async (req) => {
        if (new URL(req.url).pathname === "/ping") return new Response("pong");
        const session = await getSession<{ n: number }>(req);
        session.set("n", (session.get("n") ?? 0) + 1);
        return new Response(String(session.get("n")));
      }, { store: new RedisStore({ client: handle.client }), logger });
      const server = serve(handler);
      try {
        const browsers = Array.from({ length: BROWSERS }, () => new Browser(server.url));

        const up = await load(browsers, 300);
        assert.deepEqual(new Set(up.map((s) => s.status)), new Set([200]));
        assertCountsConsecutive(up);
        assert.equal(logger.errors.length, 0);

        await redis.stop();
        const down = await load(browsers, 500);
        const failed = only(down, "/incr");
        assert.ok(failed.length >= BROWSERS, `${failed.length} session requests`);
        assert.deepEqual(new Set(failed.map((s) => s.status)), new Set([500]));
        assert.deepEqual(new Set(only(down, "/ping").map((s) => s.status)), new Set([200]));
        assert.ok(Math.max(...down.map((s) => s.ms)) < HANG_MS, "no request hangs");
        assert.equal(logger.errors.length, failed.length, "each 500 is logged once");
        for (const entry of logger.errors) {
          assert.match(entry.message, /the session store failed/);
          assert.match(String(entry.error), /in Redis/);
        }

        await redis.restart();
        const deadline = Date.now() + 15_000;
        let recovered = false;
        while (!recovered && Date.now() < deadline) {
          const { response } = await browsers[0]!.text("/incr");
          recovered = response.status === 200;
          if (!recovered) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(recovered, "service came back within 15 s of Redis");
        const back = await load(browsers, 300);
        assert.deepEqual(new Set(back.map((s) => s.status)), new Set([200]));
        assertCountsConsecutive(back);
      } finally {
        await server.close();
        await handle.close();
        if (redis.pid === null) await redis.restart();
      }
    });
  });
}
