import assert from "node:assert/strict";
import { route } from "./http.ts";
import { EXPOSITION_CONTENT_TYPE } from "./prom.ts";

const handlers = (why: string | undefined) => ({ metrics: () => "x 1\n", ready: () => why });

Deno.test("route() serves the exposition with its content type, and /healthz", async () => {
  const m = route(handlers(undefined), "GET", "/metrics");
  assert.equal(m.headers.get("content-type"), EXPOSITION_CONTENT_TYPE);
  assert.equal(await m.text(), "x 1\n");
  const h = route(handlers("not synced"), "GET", "/healthz");
  assert.equal(h.status, 200);
  await h.body?.cancel();
});

Deno.test("route() answers /readyz 503 with the reason until ready, then 200", async () => {
  const no = route(handlers("the source has not synced yet"), "GET", "/readyz");
  assert.equal(no.status, 503);
  assert.equal(await no.text(), "not ready: the source has not synced yet\n");
  const yes = route(handlers(undefined), "HEAD", "/readyz");
  assert.equal(yes.status, 200);
  await yes.body?.cancel();
});

Deno.test("route() refuses other methods (405) and paths (404)", async () => {
  const post = route(handlers(undefined), "POST", "/metrics");
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
  const other = route(handlers(undefined), "GET", "/");
  assert.equal(other.status, 404);
  await other.body?.cancel();
});
