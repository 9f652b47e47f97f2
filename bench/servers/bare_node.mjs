// The ceiling on Node: node:http answering a constant.
import { listen } from "./_listen.mjs";

listen((_req, res) => {
  res.setHeader("Content-Type", "text/plain");
  res.end("ok");
});
