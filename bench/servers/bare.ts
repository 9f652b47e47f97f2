// The ceiling on Deno and Bun: the runtime's own server answering a constant.
import { listen } from "./_listen.ts";

listen(() => new Response("ok"));
