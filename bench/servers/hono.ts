// Hono alone, without sessions: what the framework costs before any session
// library is added.
import { Hono } from "hono";
import { listen } from "./_listen.ts";

const app = new Hono();
app.get("/", (c) => c.text("ok"));
listen(app.fetch);
