// No lost writes under load: many clients, each with its own session, all
// incrementing a counter at once through a real server. Every increment a
// client was told succeeded must be in its counter at the end, and the
// server must not fail a single request. With the signed-cookie engine the
// cookie is the session: each client keeps the cookie each answer re-signs.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { getSession, withSessions } from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { RUNTIME, serve } from "../_server.ts";
import { COOKIE_SECRET, releaseEngines, SCRATCH, SERVED_ENGINES, signedData } from "./_engines.ts";

after(releaseEngines);

const CLIENTS = 200;
const INCREMENTS = 200;
// The engines that landed after the file and memory engines run the same
// 200 clients at once, but fewer increments each, to keep the suite's time
// small: the concurrent sessions are what could make an engine lose or mix
// writes, and each further round repeats the same interleavings. The test
// name and its output say how many each engine ran.
const REDUCED_INCREMENTS = 50;
const FULL_LOAD = new Set(["FileStore", "MemoryStore"]);
// A guard against a hang, not a speed test: several times what the run
// takes on a loaded two-core machine, and under Bun's 120 s per-test limit.
const TIME_LIMIT_MS = 100_000;

interface ClientResult {
  key: string | undefined;
  requests: number;
  ok: number;
  serverErrors: number;
  otherStatuses: number[];
  // A 2xx whose counter was not one more than the previous 2xx's.
  outOfSequence: number;
  keyChanges: number;
}

/** One client: `increments` sequential requests, keeping its session cookie. */
async function drive(
  base: string,
  increments: number,
  signal: AbortSignal,
): Promise<ClientResult> {
  const result: ClientResult = {
    key: undefined,
    requests: 0,
    ok: 0,
    serverErrors: 0,
    otherStatuses: [],
    outOfSequence: 0,
    keyChanges: 0,
  };
  for (let i = 0; i < increments; i++) {
    const headers: Record<string, string> = {};
    if (result.key !== undefined) headers.cookie = `sessionid=${result.key}`;
    result.requests++;
    const response = await fetch(`${base}/increment`, { headers, signal });
    const body = await response.text();
    const key = /^sessionid=([^;]*);/.exec(response.headers.get("set-cookie") ?? "")?.[1];
    if (key !== undefined) {
      if (result.key !== undefined && key !== result.key) result.keyChanges++;
      result.key = key;
    }
    if (response.status >= 200 && response.status < 300) {
      result.ok++;
      if (body !== String(result.ok)) result.outOfSequence++;
    } else if (response.status >= 500) {
      result.serverErrors++;
    } else {
      result.otherStatuses.push(response.status);
    }
  }
  return result;
}

type Count = "requests" | "ok" | "serverErrors" | "outOfSequence" | "keyChanges";

function sum(results: ClientResult[], field: Count): number {
  return results.reduce((total, result) => total + result[field], 0);
}

for (const engine of SERVED_ENGINES) {
  const increments = FULL_LOAD.has(engine.name) ? INCREMENTS : REDUCED_INCREMENTS;
  const reduced = increments === INCREMENTS ? "" : ` (reduced from ${INCREMENTS} for time)`;
  describe(`${engine.name} under load`, () => {
    it(`loses no write: ${CLIENTS} clients doing ${increments} sequential increments each${reduced}, all at once, on a real server`, async () => {
      const root = mkdtempSync(join(SCRATCH, "tessera-load-"));
      const opened = await engine.open(root);
      const logger = new RecordingLogger();
      let handled = 0;
      const server = serve(withSessions(async (req) => {
        handled++;
        const session = await getSession<{ n: number }>(req);
        const n = session.get("n") ?? 0;
        if (new URL(req.url).pathname === "/increment") session.set("n", n + 1);
        return new Response(String(session.get("n") ?? 0));
      }, { store: opened.store, secret: COOKIE_SECRET, logger }));
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIME_LIMIT_MS);
      const started = performance.now();
      try {
        const results = await Promise.all(
          Array.from({ length: CLIENTS }, () => drive(server.url, increments, controller.signal)),
        );
        const seconds = (performance.now() - started) / 1000;

        // Each counter, read back through the server and straight from the store.
        let checked = 0;
        for (const result of results) {
          assert.ok(result.key, "every client was given a session");
          const response = await fetch(`${server.url}/read`, {
            headers: { cookie: `sessionid=${result.key}` },
            signal: controller.signal,
          });
          assert.equal(await response.text(), String(result.ok), "counter read through the server");
          const stored = await opened.store.load(result.key);
          assert.ok(stored, "the session is in the store");
          assert.equal(
            JSON.parse(opened.store.authenticatesRecords ? stored.data : signedData(stored.data)).n,
            result.ok,
            "counter read from the store",
          );
          checked++;
        }

        const requests = sum(results, "requests");
        const ok = sum(results, "ok");
        const serverErrors = sum(results, "serverErrors");
        console.log(
          `[load] ${engine.name} on ${RUNTIME}: ${requests} increment requests from ${CLIENTS} clients (${increments} each${reduced}) in ${
            seconds.toFixed(1)
          } s (${
            Math.round(requests / seconds)
          }/s): ${ok} answered 2xx, ${serverErrors} answered 5xx; ${checked} counters checked, holding ${ok} increments`,
        );
        assert.equal(requests, CLIENTS * increments, "every request was made");
        assert.equal(handled, requests + checked, "the server handled every request made");
        assert.equal(serverErrors, 0, "no 5xx");
        assert.deepEqual(results.flatMap((r) => r.otherStatuses), [], "no other status");
        assert.equal(ok, CLIENTS * increments, "every increment answered 2xx");
        assert.equal(sum(results, "outOfSequence"), 0, "each 2xx saw the one before");
        assert.equal(
          sum(results, "keyChanges"),
          engine.reissuesCookie ? ok - CLIENTS : 0,
          engine.reissuesCookie
            ? "every answer after the first re-signed the cookie"
            : "no session changed key",
        );
        assert.deepEqual(logger.errors, []);
      } finally {
        clearTimeout(timer);
        await server.close();
        await opened.close();
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
}
