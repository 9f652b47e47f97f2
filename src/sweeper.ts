/**
 * `startSweeper`: `clearsessions` on a schedule, inside the server.
 *
 * @module
 */

import { clearTimeout as stopTimer, setTimeout as startTimer } from "node:timers";
import type { Logger } from "./logger.ts";
import type { SessionStore } from "./stores/store.ts";

/**
 * Options of {@link startSweeper}.
 */
export interface SweeperOptions {
  /**
   * Seconds between the end of one sweep and the start of the next, before
   * jitter. The first sweep also waits this long, so that a server's start
   * is not slowed by it.
   *
   * @default {3600}
   */
  interval?: number;
  /**
   * How much each wait varies at random, as a fraction of `interval`: with
   * 0.1, a wait is 0.9 to 1.1 times `interval`. Many processes started
   * together then do not all sweep at the same instant. 0 for none.
   *
   * @default {0.1}
   */
  jitter?: number;
  /**
   * Where a failed sweep is reported; a failure never reaches a request.
   *
   * @default {console}
   */
  logger?: Logger;
  /**
   * Called after each sweep that succeeded, with how many sessions it
   * removed.
   *
   * @default {undefined}
   */
  onSweep?: (removed: number) => void;
}

/** A running schedule of sweeps, from {@link startSweeper}. */
export interface Sweeper {
  /**
   * Stops the schedule. Resolves once a sweep that was running has ended;
   * no sweep starts after the call.
   */
  stop(): Promise<void>;
}

// The stores a sweep is running on, in this process: two sweepers given one
// store never sweep it at once.
const sweeping = new WeakSet<SessionStore>();

/**
 * Runs `store.clearExpired()` every `interval` seconds (with jitter), inside
 * the server, as a scheduled `clearsessions` would. Off unless called, as in
 * Django. The timer never keeps the process alive: a server that ends, or a
 * script that returns, exits as if there were no sweeper. A sweep never
 * overlaps another of the same store, and a failed one is logged and tried
 * again at the next interval.
 *
 * For one sweep per deployment rather than per process, schedule
 * `clearsessions` instead (cron, a systemd timer, or `Deno.cron`).
 *
 * @param store The store to sweep: the one given to `withSessions`.
 * @param options The interval, jitter, logger and a callback.
 * @returns The schedule, to stop it.
 * @throws {RangeError} for an interval that is not a positive number of
 * seconds, or a jitter outside 0 to 1.
 * @example Sweep a directory of sessions every ten minutes
 * ```ts
 * import { FileStore, startSweeper, withSessions } from "@tessera/sessions";
 *
 * const store = new FileStore({ path: Deno.makeTempDirSync() });
 * const handler = withSessions(() => new Response("ok"), { store });
 * const sweeper = startSweeper(store, { interval: 600 });
 * // ... serve handler; at shutdown:
 * await sweeper.stop();
 * ```
 */
export function startSweeper(store: SessionStore, options: SweeperOptions = {}): Sweeper {
  if (typeof store !== "object" || store === null || typeof store.clearExpired !== "function") {
    throw new TypeError(
      "Cannot start a sweeper as 'store' must be a session store such as new FileStore()",
    );
  }
  const interval = options.interval ?? 3600;
  if (typeof interval !== "number" || !(interval > 0) || !Number.isFinite(interval)) {
    throw new RangeError(
      `Cannot start a sweeper as 'interval' must be a positive number of seconds: current value is ${interval}`,
    );
  }
  const jitter = options.jitter ?? 0.1;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(
      `Cannot start a sweeper as 'jitter' must be a number from 0 to 1: current value is ${jitter}`,
    );
  }
  const logger = options.logger ?? console;
  let stopped = false;
  let timer: ReturnType<typeof startTimer> | undefined;
  let running: Promise<void> | undefined;

  const schedule = (): void => {
    if (stopped) return;
    const seconds = interval * (1 + jitter * (2 * Math.random() - 1));
    timer = startTimer(() => {
      running = sweep().finally(() => {
        running = undefined;
        schedule();
      });
    }, seconds * 1000);
    // Neither runtime's timer then holds the process open.
    timer.unref();
  };

  const sweep = async (): Promise<void> => {
    if (sweeping.has(store)) return;
    sweeping.add(store);
    try {
      const removed = await store.clearExpired();
      options.onSweep?.(removed);
    } catch (error) {
      logger.error("Cannot sweep the expired sessions; the next sweep will try again", error);
    } finally {
      sweeping.delete(store);
    }
  };

  schedule();
  return {
    async stop(): Promise<void> {
      stopped = true;
      if (timer !== undefined) stopTimer(timer);
      await running;
    },
  };
}
