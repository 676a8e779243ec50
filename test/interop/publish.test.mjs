// The CloudEvents JavaScript SDK (npm `cloudevents`) as a publisher against the real server: binary,
// structured and batch mode (api.md §1), each event polled back and compared with what the SDK sent,
// and read back through the SDK's own parser.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloudEvent, HTTP, Mode, emitterFor, httpTransport } from "cloudevents";

import { PUBLISH_PATH, freshResource, sleep, startServer } from "./lib.mjs";

const BATCH_CT = "application/cloudevents-batch+json";

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

function sdkEvent(resource, extra = {}) {
  return new CloudEvent({ source: "https://example.com/sdk", type: "sdk.created", resource, ...extra });
}

// The polled event carries the SDK event's attributes (time compared as an instant: the server gives
// it in UTC with Z, maybe with other fraction digits).
function assertSameAttributes(polled, ce, { skip = [] } = {}) {
  const sent = JSON.parse(JSON.stringify(ce)); // the SDK's own JSON form
  for (const [k, v] of Object.entries(sent)) {
    if (skip.includes(k) || k === "data" || k === "data_base64") continue;
    if (k === "time") {
      assert.equal(Date.parse(polled.time), Date.parse(v), `time ${polled.time} vs ${v}`);
      assert.match(polled.time, /Z$/);
      continue;
    }
    assert.deepEqual(polled[k], v, `attribute ${k}`);
  }
}

async function pollOne(resource) {
  const { events } = await srv.poll(resource);
  assert.equal(events.length, 1, JSON.stringify(events));
  return events[0];
}

test("binary: JSON data", async () => {
  const res = freshResource();
  const ce = sdkEvent(res, { subject: "/party/1", data: { a: [1, 2, { b: null }], s: "x" }, myext: "v1" });
  const msg = HTTP.binary(ce);
  assert.ok(msg.headers["ce-id"], "the SDK sends ce- headers");
  const r = await srv.publishMessage(msg);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, "");
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce, { skip: ["datacontenttype"] });
  assert.deepEqual(ev.data, { a: [1, 2, { b: null }], s: "x" });
  assert.equal(ev.datacontenttype, msg.headers["content-type"], "Content-Type becomes datacontenttype");
  assert.equal(ev.myext, "v1");
  // read back through the SDK's structured parser: the same event
  const back = HTTP.toEvent({ headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(ev) });
  assert.equal(back.id, ce.id);
  assert.equal(back.source, ce.source);
  assert.equal(back.subject, "/party/1");
  assert.equal(back.resource, res);
  assert.deepEqual(back.data, ce.data);
});

test("binary: text data", async () => {
  const res = freshResource();
  const ce = sdkEvent(res, { datacontenttype: "text/plain", data: "hello, plain text {not json}" });
  const msg = HTTP.binary(ce);
  assert.equal(msg.headers["content-type"], "text/plain");
  const r = await srv.publishMessage(msg);
  assert.equal(r.status, 200, r.text);
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce);
  assert.equal(ev.data, "hello, plain text {not json}");
  assert.equal(ev.datacontenttype, "text/plain");
});

test("binary: binary data becomes data_base64", async () => {
  const res = freshResource();
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const ce = sdkEvent(res, { datacontenttype: "application/octet-stream", data: bytes });
  const msg = HTTP.binary(ce);
  const r = await srv.publishMessage(msg);
  assert.equal(r.status, 200, r.text);
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce);
  assert.equal(ev.data, undefined);
  assert.equal(ev.data_base64, Buffer.from(bytes).toString("base64"));
  assert.equal(ev.datacontenttype, "application/octet-stream");
  const back = HTTP.toEvent({ headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(ev) });
  assert.deepEqual(Buffer.from(back.data), Buffer.from(bytes));
});

test("binary: missing required attribute is rejected", async () => {
  const res = freshResource();
  const msg = HTTP.binary(sdkEvent(res, { data: { x: 1 } }));
  delete msg.headers["ce-type"];
  const r = await srv.publishMessage(msg);
  assert.equal(r.status, 400, r.text);
  const problem = JSON.parse(r.text);
  assert.deepEqual(problem.errors, { RequestBody: ["CloudEvent is missing required attributes: type"] });
  assert.deepEqual((await srv.poll(res)).events, []);
});

test("binary: through the SDK's emitter and http transport", async () => {
  const res = freshResource();
  const emit = emitterFor(httpTransport(srv.baseUrl + PUBLISH_PATH), { mode: Mode.BINARY });
  const ce = sdkEvent(res, { data: { via: "emitter" } });
  await emit(ce);
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce, { skip: ["datacontenttype"] });
  assert.deepEqual(ev.data, { via: "emitter" });
});

test("structured: JSON data", async () => {
  const res = freshResource();
  const ce = sdkEvent(res, {
    subject: "/party/2", datacontenttype: "application/json", data: { n: 1, list: ["a", "b"] },
    dataschema: "https://example.com/schema.json", resourceinstance: "123/abc",
  });
  const msg = HTTP.structured(ce);
  assert.match(msg.headers["content-type"], /^application\/cloudevents\+json/);
  const r = await srv.publishMessage(msg);
  assert.equal(r.status, 200, r.text);
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce);
  assert.deepEqual(ev.data, ce.data);
});

test("structured: binary data as data_base64", async () => {
  const res = freshResource();
  const bytes = Uint8Array.from([0, 1, 2, 250, 255, 128]);
  const ce = sdkEvent(res, { datacontenttype: "application/octet-stream", data: bytes });
  const r = await srv.publishMessage(HTTP.structured(ce));
  assert.equal(r.status, 200, r.text);
  const ev = await pollOne(res);
  assertSameAttributes(ev, ce);
  assert.equal(ev.data_base64, Buffer.from(bytes).toString("base64"));
});

test("structured: through the SDK's emitter and http transport", async () => {
  const res = freshResource();
  const emit = emitterFor(httpTransport(srv.baseUrl + PUBLISH_PATH), { mode: Mode.STRUCTURED });
  const ce = sdkEvent(res, { data: { via: "structured emitter" } });
  await emit(ce);
  let ev;
  for (let i = 0; i < 20 && !ev; i++) {
    ev = (await srv.poll(res)).events[0];
    if (!ev) await sleep(50);
  }
  assert.ok(ev, "event stored");
  assertSameAttributes(ev, ce, { skip: ["datacontenttype"] });
  assert.deepEqual(ev.data, { via: "structured emitter" });
});

test("batch: all stored in order", async () => {
  const res = freshResource();
  const ces = [
    sdkEvent(res, { subject: "/party/1", data: { i: 0 } }),
    sdkEvent(res, { datacontenttype: "text/plain", data: "one" }),
    sdkEvent(res, { datacontenttype: "application/octet-stream", data: Uint8Array.from([1, 2, 3]) }),
    sdkEvent(res, { type: "sdk.other", myext: "x" }),
  ];
  const body = JSON.stringify(ces);
  // the SDK reads the same body back as a batch of the same events
  const parsed = HTTP.toEvent({ headers: { "content-type": BATCH_CT }, body });
  assert.deepEqual(parsed.map((e) => e.id), ces.map((e) => e.id));
  const r = await srv.publishMessage({ headers: { "content-type": BATCH_CT }, body });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, "");
  const { events } = await srv.poll(res);
  assert.deepEqual(events.map((e) => e.id), ces.map((e) => e.id), "stored in batch order");
  events.forEach((ev, i) => assertSameAttributes(ev, ces[i], { skip: i === 0 ? ["datacontenttype"] : [] }));
  assert.deepEqual(events[0].data, { i: 0 });
  assert.equal(events[1].data, "one");
  assert.equal(events[2].data_base64, Buffer.from([1, 2, 3]).toString("base64"));
  assert.equal(events[3].myext, "x");
});

test("batch: an invalid event rejects the whole batch", async () => {
  const res = freshResource();
  const bad = new CloudEvent({ source: "https://example.com/sdk", resource: res }, false); // no type
  const ces = [sdkEvent(res), bad, sdkEvent(res)];
  const r = await srv.publishMessage({ headers: { "content-type": BATCH_CT }, body: JSON.stringify(ces) });
  assert.equal(r.status, 400, r.text);
  const problem = JSON.parse(r.text);
  assert.deepEqual(problem.errors, { RequestBody: ["Event at index 1: CloudEvent is missing required attributes: type"] });
  assert.deepEqual((await srv.poll(res)).events, [], "nothing stored");
});
