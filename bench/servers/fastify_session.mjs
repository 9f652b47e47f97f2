// @fastify/session (with @fastify/cookie) on Node: `fastify_session.mjs
// <workload>`, at its defaults and its default in-memory store, except the
// cookie's Secure flag, which its README says to turn off over plain HTTP.
import process from "node:process";
import Fastify from "fastify";
import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import { SECRET, visit, workloadOf } from "./_counter.mjs";

const workload = workloadOf(process.argv[2]);
const app = Fastify();
app.register(fastifyCookie);
app.register(fastifySession, { secret: SECRET, cookie: { secure: false } });
app.get("/", (request, reply) => {
  const { store, body } = visit(request.session.get("count"), workload);
  if (store !== undefined) request.session.set("count", store);
  reply.type("text/plain").send(body);
});
const address = await app.listen({ host: "127.0.0.1", port: 0 });
console.log(`listening on ${address.replace("http://", "")}`);
