import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore, Session } from "../../mod.ts";
import { sessionConfig } from "../_config.ts";
import { storeContract } from "./_contract.ts";

storeContract("MemoryStore", () => ({ store: new MemoryStore() }));

const HOUR = 3_600_000;

describe("MemoryStore", () => {
  it("never holds more than maxEntries sessions under a flood of new ones", async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    for (let i = 0; i < 1000; i++) await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    assert.equal(store.size, 100);
  });

  it("evicts the least recently used session first", async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    const record = { data: "{}", expiresAt: Date.now() + HOUR };
    const a = await store.create(record);
    const b = await store.create(record);
    const c = await store.create(record);
    await store.load(a); // a is now the most recently used
    const d = await store.create(record);
    assert.equal(await store.exists(b), false);
    for (const key of [a, c, d]) assert.equal(await store.exists(key), true);
  });

  it("keeps evicting the least recently used session across many creates and loads", async () => {
    const store = new MemoryStore({ maxEntries: 5 });
    const record = { data: "{}", expiresAt: Date.now() + HOUR };
    // The model: keys from least to most recently used.
    let model: string[] = [];
    let seed = 7;
    for (let step = 0; step < 500; step++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      if (model.length > 0 && seed % 3 === 0) {
        const key = model[seed % model.length]!;
        assert.notEqual(await store.load(key), null);
        model = [...model.filter((other) => other !== key), key];
      } else {
        model.push(await store.create(record));
        if (model.length > 5) model.shift();
      }
      assert.equal(store.size, model.length);
      for (const key of model) assert.equal(await store.exists(key), true);
    }
  });

  it("an update does not evict", async () => {
    const store = new MemoryStore({ maxEntries: 2 });
    const record = { data: "{}", expiresAt: Date.now() + HOUR };
    const a = await store.create(record);
    const b = await store.create(record);
    await store.save(a, { data: '{"n":1}', expiresAt: Date.now() + HOUR });
    assert.equal(store.size, 2);
    assert.equal(await store.exists(b), true);
  });

  it("stores copies: changing an object after set() changes nothing stored until the save", async () => {
    const store = new MemoryStore();
    const session = new Session<{ cart: number[] }>(null, sessionConfig(store));
    const cart = [1, 2];
    session.set("cart", cart);
    await session.save();
    cart.push(3);
    const loaded = new Session<{ cart: number[] }>(session.sessionKey, sessionConfig(store));
    await loaded.load();
    assert.deepEqual(loaded.get("cart"), [1, 2]);
    loaded.get("cart")!.push(4);
    const again = new Session<{ cart: number[] }>(session.sessionKey, sessionConfig(store));
    await again.load();
    assert.deepEqual(again.get("cart"), [1, 2]);
  });

  it("drops an expired session when it is read", async () => {
    const store = new MemoryStore();
    const key = await store.create({ data: "{}", expiresAt: Date.now() - 1 });
    assert.equal(store.size, 1);
    assert.equal(await store.load(key), null);
    assert.equal(store.size, 0);
  });
});
