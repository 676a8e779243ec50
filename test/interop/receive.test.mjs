// The CloudEvents JavaScript SDK (npm `cloudevents`) as the parser of what a webhook receiver gets:
// HTTP.toEvent({headers, body}) on the requests the real server delivered in the `cloudevents` and
// `binary` content modes (subscription extension contentMode, api.md §4) must give back the events
// that were published.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloudEvent, HTTP } from "cloudevents";

import { freshResource, messageOf, startReceiver, startServer } from "./lib.mjs";

const BYTES = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);

let srv, recv, res, published, paths;

before(async () => {
  srv = await startServer();
  recv = await startReceiver();
  res = freshResource();
  paths = {};
  for (const mode of ["cloudevents", "binary"]) {
    paths[mode] = recv.uniquePath(mode);
    await srv.subscribe({ endPoint: recv.url(paths[mode]), resourceFilter: res, contentMode: mode });
  }
  published = [
    new CloudEvent({
      source: "https://example.com/sdk/receive", type: "sdk.json", resource: res, subject: "/party/42",
      datacontenttype: "application/json", data: { n: 1, nested: { list: [true, null, "x"] } },
      dataschema: "https://example.com/schema.json", myext: "value1", resourceinstance: "42/abc",
    }),
    new CloudEvent({
      source: "https://example.com/sdk/receive", type: "sdk.text", resource: res,
      datacontenttype: "text/plain", data: "plain text body",
    }),
    new CloudEvent({
      source: "https://example.com/sdk/receive", type: "sdk.bytes", resource: res,
      datacontenttype: "application/octet-stream", data: BYTES,
    }),
    new CloudEvent({ source: "https://example.com/sdk/receive", type: "sdk.nodata", resource: res, subject: "/s" }),
  ];
  for (const ce of published) {
    const r = await srv.publishMessage(HTTP.structured(ce));
    assert.equal(r.status, 200, r.text);
  }
  for (const mode of Object.keys(paths)) {
    const got = await recv.waitFor(paths[mode], published.length, "event");
    assert.equal(got.length, published.length, `${mode}: ${got.length} deliveries`);
  }
});

after(async () => {
  await recv?.close();
  await srv?.stop();
});

// The SDK's view of each delivery on path, by event id.
function parsedDeliveries(mode) {
  const out = new Map();
  for (const rec of recv.on(paths[mode], "event")) {
    const msg = messageOf(rec);
    assert.ok(HTTP.isEvent(msg), `${mode}: the SDK recognises a CloudEvent in ${JSON.stringify(rec.headers)}`);
    const ev = HTTP.toEvent(msg);
    assert.ok(!out.has(ev.id), "each event delivered once");
    out.set(ev.id, { ev, rec });
  }
  assert.deepEqual([...out.keys()].sort(), published.map((e) => e.id).sort());
  return out;
}

function assertSameEvent(got, want, mode) {
  for (const k of ["id", "source", "type", "specversion", "subject", "dataschema", "datacontenttype"]) {
    assert.equal(got[k], want[k], `${mode}: ${k}`);
  }
  assert.equal(Date.parse(got.time), Date.parse(want.time), `${mode}: time`);
  assert.equal(got.resource, want.resource, `${mode}: resource extension`);
  assert.equal(got.myext, want.myext, `${mode}: myext extension`);
  assert.equal(got.resourceinstance, want.resourceinstance, `${mode}: resourceinstance extension`);
  // the SDK's validation of the parsed event (strict schema check)
  assert.doesNotThrow(() => got.validate(), `${mode}: parsed event validates`);
}

function assertSameData(got, want, mode) {
  if (want.type === "sdk.bytes") {
    assert.ok(got.data !== undefined && got.data !== null, `${mode}: binary data present`);
    assert.deepEqual(Buffer.from(Array.from(got.data)), Buffer.from(BYTES), `${mode}: bytes`);
    assert.equal(got.data_base64, Buffer.from(BYTES).toString("base64"), `${mode}: data_base64`);
  } else if (want.type === "sdk.nodata") {
    assert.ok(got.data === undefined || got.data === "", `${mode}: no data, got ${JSON.stringify(got.data)}`);
  } else {
    assert.deepEqual(got.data, want.data, `${mode}: data`);
  }
}

test("cloudevents content mode: HTTP.toEvent gives back the published events", () => {
  const got = parsedDeliveries("cloudevents");
  for (const want of published) {
    const { ev, rec } = got.get(want.id);
    assert.equal(rec.headers["content-type"], "application/cloudevents+json; charset=utf-8");
    assertSameEvent(ev, want, "cloudevents");
    assertSameData(ev, want, "cloudevents");
  }
});

test("binary content mode: HTTP.toEvent gives back the published events", () => {
  const got = parsedDeliveries("binary");
  for (const want of published) {
    const { ev, rec } = got.get(want.id);
    assert.equal(rec.headers["ce-id"], want.id);
    assert.equal(rec.headers["ce-specversion"], "1.0");
    if (want.datacontenttype) assert.equal(rec.headers["content-type"], want.datacontenttype);
    assert.equal(rec.headers["ce-datacontenttype"], undefined, "datacontenttype travels as Content-Type");
    assertSameEvent(ev, want, "binary");
    assertSameData(ev, want, "binary");
  }
});

test("binary content mode: the body is exactly the data", () => {
  for (const rec of recv.on(paths.binary, "event")) {
    const want = published.find((e) => e.id === rec.headers["ce-id"]);
    if (want.type === "sdk.bytes") assert.deepEqual(rec.body, Buffer.from(BYTES));
    else if (want.type === "sdk.text") assert.equal(rec.body.toString("utf8"), "plain text body");
    else if (want.type === "sdk.json") assert.deepEqual(JSON.parse(rec.body.toString("utf8")), want.data);
    else assert.equal(rec.body.length, 0, "no data, no body");
  }
});
