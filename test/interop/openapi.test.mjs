// The OpenAPI document (docs/openapi.json) as the real server serves it, validated by a real
// third-party validator (npm `@apidevtools/swagger-parser`: the OpenAPI 3.1 schema plus its own
// checks, every $ref resolved); then real answers of the server checked against what the document
// says: every status it answers is one the operation lists, with the listed content type.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import SwaggerParser from "@apidevtools/swagger-parser";

import { PUBLISH_PATH, SUBS_PATH, freshResource, startServer } from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DOC_FILE = path.resolve(HERE, "..", "..", "docs", "openapi.json");
const DOC_PATH = "/events/api/v1/openapi.json";

let srv;
let served;
before(async () => {
  srv = await startServer();
  served = await srv.request("GET", DOC_PATH);
});
after(async () => { await srv?.stop(); });

test("the served document is docs/openapi.json, as application/json", () => {
  assert.equal(served.status, 200);
  assert.equal(served.headers.get("content-type"), "application/json");
  assert.ok(served.body.equals(readFileSync(DOC_FILE)), "served bytes differ from docs/openapi.json");
});

test("swagger-parser validates the served document", async () => {
  const api = await SwaggerParser.validate(JSON.parse(served.text));
  assert.match(api.openapi, /^3\.1\./);
  assert.ok(Object.keys(api.paths).length >= 10);
});

test("the validator is not a no-op: a broken copy is refused", async () => {
  const broken = JSON.parse(served.text);
  delete broken.paths[PUBLISH_PATH].post.responses["200"].description; // description is required
  await assert.rejects(SwaggerParser.validate(broken));
  const dangling = JSON.parse(served.text);
  dangling.paths[PUBLISH_PATH].get.responses["200"].content["application/cloudevents+json"].schema =
    { $ref: "#/components/schemas/NoSuchSchema" };
  await assert.rejects(SwaggerParser.validate(dangling));
});

// Sends a request and checks the answer against the operation in the document: the status is listed
// and, when the operation lists content for it, the answer's media type is one of them.
async function checkAgainstDoc(api, method, template, concretePath, opts = {}) {
  const op = api.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not in the document`);
  const r = await srv.request(method, concretePath, opts);
  const listed = op.responses[String(r.status)];
  assert.ok(listed, `${method} ${concretePath} answered ${r.status}, not listed for the operation (${Object.keys(op.responses)}): ${r.text}`);
  if (r.body.length && listed.content) {
    const mt = (r.headers.get("content-type") || "").split(";")[0].trim();
    const types = Object.keys(listed.content);
    assert.ok(types.includes(mt) || types.includes("*/*"), `${method} ${concretePath} ${r.status}: ${mt} not in ${types}`);
  }
  if (listed.headers) {
    for (const h of Object.keys(listed.headers)) {
      if (h.toLowerCase() === "location" && r.status === 201) assert.ok(r.headers.get(h), `${h} header missing`);
    }
  }
  return r;
}

test("real answers match the documented statuses and content types", async () => {
  const api = await SwaggerParser.dereference(JSON.parse(served.text));
  const res = freshResource("openapi");
  const ev = { specversion: "1.0", id: "oa-1", source: "https://example.com/oa", type: "oa.t", resource: res, data: { n: 1 } };
  const ce = { "content-type": "application/cloudevents+json" };
  const P = PUBLISH_PATH;

  await checkAgainstDoc(api, "POST", P, P, { body: JSON.stringify(ev), headers: ce });
  await checkAgainstDoc(api, "POST", P, P, { body: JSON.stringify([{ ...ev, id: "oa-2" }]), headers: { "content-type": "application/cloudevents-batch+json" } });
  await checkAgainstDoc(api, "POST", P, P, {
    body: "hello", headers: { "content-type": "text/plain", "ce-specversion": "1.0", "ce-id": "oa-3", "ce-source": "/oa", "ce-type": "oa.t", "ce-resource": res },
  });
  await checkAgainstDoc(api, "POST", P, P, { body: "{}", headers: { "content-type": "application/json" } }); // 415
  await checkAgainstDoc(api, "POST", P, P, { body: JSON.stringify({ ...ev, resource: undefined }), headers: ce }); // 400 detail
  await checkAgainstDoc(api, "POST", P, P, { body: "[", headers: ce }); // 400 validation

  const page = await checkAgainstDoc(api, "GET", P, `${P}?resource=${res}&after=0&size=2`);
  assert.equal(page.status, 200);
  assert.equal(JSON.parse(page.text).length, 2);
  assert.ok(page.headers.get("next"), "a full page has a next link");
  await checkAgainstDoc(api, "GET", P, `${P}?after=0`); // 400 validation (resource)

  await checkAgainstDoc(api, "GET", "/events/api/v1/app/{org}/{app}", "/events/api/v1/app/ttd/my-app?after=0");
  await checkAgainstDoc(api, "GET", "/events/api/v1/app/party", "/events/api/v1/app/party?after=0"); // 400
  await checkAgainstDoc(api, "POST", "/events/api/v1/app", "/events/api/v1/app", {
    body: JSON.stringify({ source: "https://ttd.apps.altinn.no/ttd/my-app/instances/1/2", specversion: "1.0", type: "app.t", subject: "/party/1" }),
    headers: { "content-type": "application/json" },
  });

  const S = SUBS_PATH;
  const created = await checkAgainstDoc(api, "POST", S, S, {
    body: JSON.stringify({ endPoint: "http://127.0.0.1:9/hook", resourceFilter: res, contentMode: "cloudevents", signingSecret: "whsec_" + Buffer.alloc(32, 7).toString("base64") }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(created.status, 201, created.text);
  const sub = JSON.parse(created.text);
  assert.equal(sub.signingSecret, undefined, "signingSecret is write-only");
  // every property the server answers with is a documented one
  const props = Object.keys(api.components.schemas.Subscription.properties);
  for (const k of Object.keys(sub)) assert.ok(props.includes(k), `undocumented subscription field ${k}`);
  await checkAgainstDoc(api, "POST", S, S, { body: JSON.stringify({ resourceFilter: res }), headers: { "content-type": "application/json" } }); // 400 string
  await checkAgainstDoc(api, "GET", S, S);
  await checkAgainstDoc(api, "GET", `${S}/{id}`, `${S}/${sub.id}`);
  await checkAgainstDoc(api, "GET", `${S}/{id}/deadletters`, `${S}/${sub.id}/deadletters`);
  await checkAgainstDoc(api, "POST", `${S}/{id}/deadletters/redeliver`, `${S}/${sub.id}/deadletters/redeliver`);
  await checkAgainstDoc(api, "DELETE", `${S}/{id}`, `${S}/${sub.id}`);
  await checkAgainstDoc(api, "GET", `${S}/{id}`, `${S}/${sub.id}`); // 404 now

  await checkAgainstDoc(api, "GET", "/health", "/health");
  await checkAgainstDoc(api, "GET", DOC_PATH, DOC_PATH);
});
