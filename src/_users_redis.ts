// The index of sessions by user in Redis, native: a hash per user (one
// field per session, each update a single atomic command or script, so
// that processes never overwrite each other's entries) whose TTL follows
// the latest session, and a hash per user for the generation.

import type { RedisCommandClient } from "./stores/redis.ts";
import type { Entry, Generation, UserBackend } from "./users.ts";

type Send = (args: string[]) => Promise<unknown>;

// Sets a session's entry, drops the entry it replaces and every expired
// one, and makes the hash live at least as long as the new entry.
// KEYS[1] the hash; ARGV: id, entry JSON, TTL in ms, old id or "", now.
const PUT = `
local now = tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  if not ok or type(e) ~= 'table' or type(e.e) ~= 'number' or e.e <= now then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[1], ARGV[4]) end
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

// KEYS[1] the generation hash; ARGV: now, TTL in ms. Returns the new one.
const BUMP = `
redis.call('HSET', KEYS[1], 'at', ARGV[1])
local g = redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return g`;

const decoder = new TextDecoder();

export class RedisBackend implements UserBackend {
  readonly #send: Send;
  readonly #prefix: string;
  readonly #recordKey: (kind: "u" | "g", userId: string) => Promise<string>;
  readonly #generationLifetime: number;

  constructor(
    client: RedisCommandClient,
    prefix: string,
    recordKey: (kind: "u" | "g", userId: string) => Promise<string>,
    generationLifetime: number,
  ) {
    this.#send = sender(client);
    this.#prefix = prefix;
    this.#recordKey = recordKey;
    this.#generationLifetime = generationLifetime;
  }

  async entries(userId: string): Promise<Record<string, Entry>> {
    const key = this.#prefix + await this.#recordKey("u", userId);
    const now = Date.now();
    const entries: Record<string, Entry> = {};
    for (const [id, text] of pairs(await this.#send(["HGETALL", key]))) {
      const entry = parseEntry(text);
      if (entry !== null && entry.e > now) entries[id] = entry;
    }
    return entries;
  }

  async generation(userId: string): Promise<Generation> {
    const key = this.#prefix + await this.#recordKey("g", userId);
    const reply = await this.#send(["HMGET", key, "g", "at"]);
    const [g, at] = Array.isArray(reply) ? reply.map(text) : [null, null];
    if (g === null || g === undefined) return { g: 0, at: 0 };
    const generation = { g: Number(g), at: Number(at) };
    if (!Number.isSafeInteger(generation.g) || !Number.isFinite(generation.at)) {
      // Reading it as 0 would bring back every session it ended.
      throw new Error("Cannot read a user's generation as its record is damaged");
    }
    return generation;
  }

  async bump(userId: string): Promise<number> {
    const key = this.#prefix + await this.#recordKey("g", userId);
    const reply = await this.#send([
      "EVAL",
      BUMP,
      "1",
      key,
      String(Date.now()),
      String(this.#generationLifetime),
    ]);
    return Number(reply);
  }

  async put(
    userId: string,
    id: string,
    oldId: string | null,
    make: (previous: Entry | undefined) => Entry,
  ): Promise<void> {
    const key = this.#prefix + await this.#recordKey("u", userId);
    const previous = parseEntry(text(await this.#send(["HGET", key, id])));
    const entry = make(previous ?? undefined);
    const now = Date.now();
    await this.#send([
      "EVAL",
      PUT,
      "1",
      key,
      id,
      JSON.stringify(entry),
      String(Math.max(1, Math.ceil(entry.e - now))),
      oldId ?? "",
      String(now),
    ]);
  }

  async remove(userId: string, select: (id: string) => boolean): Promise<Entry[]> {
    const key = this.#prefix + await this.#recordKey("u", userId);
    const chosen: [string, Entry][] = [];
    for (const [id, value] of pairs(await this.#send(["HGETALL", key]))) {
      const entry = parseEntry(value);
      if (entry !== null && select(id)) chosen.push([id, entry]);
    }
    if (chosen.length > 0) await this.#send(["HDEL", key, ...chosen.map(([id]) => id)]);
    return chosen.map(([, entry]) => entry);
  }
}

function sender(client: RedisCommandClient): Send {
  const candidate = client as unknown as Record<string, unknown>;
  if (typeof candidate.call === "function") {
    const call = candidate.call as (command: string, ...args: string[]) => Promise<unknown>;
    return (args) => call.call(candidate, args[0]!, ...args.slice(1));
  }
  if (typeof candidate.send === "function") {
    const send = candidate.send as (command: string, args: string[]) => Promise<unknown>;
    return (args) => send.call(candidate, args[0]!, args.slice(1));
  }
  const sendCommand = candidate.sendCommand as (args: string[]) => Promise<unknown>;
  return (args) => sendCommand.call(candidate, args);
}

function text(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return null;
}

// HGETALL answers a flat array (RESP2), or a map or object (RESP3).
function pairs(reply: unknown): [string, string | null][] {
  if (Array.isArray(reply)) {
    const out: [string, string | null][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([text(reply[i])!, text(reply[i + 1])]);
    return out;
  }
  if (reply instanceof Map) return [...reply].map(([k, v]) => [text(k)!, text(v)]);
  if (typeof reply === "object" && reply !== null) {
    return Object.entries(reply).map(([k, v]) => [k, text(v)]);
  }
  return [];
}

function parseEntry(value: string | null): Entry | null {
  if (value === null) return null;
  try {
    const entry = JSON.parse(value) as Entry;
    if (typeof entry.k === "string" && Number.isFinite(entry.e)) return entry;
  } catch {
    // A damaged entry is left out of the list.
  }
  return null;
}

/** Options of the native Redis index of {@link UserSessions}. */
export interface RedisUserIndexOptions {
  /** A connected Redis client, as `RedisStore` takes. */
  redis: RedisCommandClient;
  /**
   * The prefix of the index's keys: a hash per user for the list, another
   * for the generation.
   *
   * @default {"tessera:users:"}
   */
  prefix?: string;
}
