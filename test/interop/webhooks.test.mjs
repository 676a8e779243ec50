// A Standard Webhooks verifier (npm `standardwebhooks`: new Webhook(secret).verify(payload, headers))
// checking the signatures of real deliveries of the server (subscription extension signingSecret,
// api.md §4): the handshake, events in each content mode, and every attempt of a retried delivery.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Webhook, WebhookVerificationError } from "standardwebhooks";

import { freshResource, newSigningSecret, startReceiver, startServer } from "./lib.mjs";

let srv, recv;

before(async () => {
  srv = await startServer();
  recv = await startReceiver();
});

after(async () => {
  await recv?.close();
  await srv?.stop();
});

async function publish(ev) {
  const r = await srv.request("POST", "/events/api/v1/events", {
    body: JSON.stringify(ev), headers: { "content-type": "application/cloudevents+json" },
  });
  assert.equal(r.status, 200, r.text);
}

function event(resource, extra = {}) {
  return {
    specversion: "1.0", id: crypto.randomUUID(), source: "https://example.com/wh", type: "wh.created",
    resource, ...extra,
  };
}

// A subscription with a fresh secret (and the given fields) on a fresh resource; waits for validation.
async function signedSubscription(fields = {}) {
  const secret = newSigningSecret(32);
  const resource = freshResource();
  const path = recv.uniquePath("wh");
  await srv.subscribe({ endPoint: recv.url(path), resourceFilter: resource, signingSecret: secret, ...fields });
  return { secret, resource, path };
}

function verify(secret, rec, jsonParse = true) {
  return new Webhook(secret).verify(rec.body.toString("utf8"), rec.headers, { jsonParse });
}

test("the handshake is signed", async () => {
  const { secret, path } = await signedSubscription();
  const hs = recv.on(path, "handshake");
  assert.ok(hs.length >= 1);
  for (const rec of hs) {
    const doc = verify(secret, rec);
    assert.equal(doc.type, "platform.events.validatesubscription");
  }
});

for (const mode of ["structured", "cloudevents"]) {
  test(`events are signed (${mode} content mode)`, async () => {
    const { secret, resource, path } = await signedSubscription(mode === "structured" ? {} : { contentMode: mode });
    const evs = [event(resource, { data: { k: "v", n: [1, 2] } }), event(resource, { subject: "/party/5", data: "text" })];
    for (const ev of evs) await publish(ev);
    const got = await recv.waitFor(path, 2, "event");
    assert.equal(got.length, 2);
    const ids = new Set();
    for (const rec of got) {
      const doc = verify(secret, rec);
      const want = evs.find((e) => e.id === doc.id);
      assert.ok(want, `a published event: ${JSON.stringify(doc)}`);
      assert.deepEqual(doc.data, want.data);
      ids.add(rec.headers["webhook-id"]);
    }
    assert.equal(ids.size, 2, "each delivery has its own webhook-id");
  });
}

test("events are signed (binary content mode: the signed body is the data)", async () => {
  const { secret, resource, path } = await signedSubscription({ contentMode: "binary" });
  const json = event(resource, { data: { k: "v" } });
  const text = event(resource, { datacontenttype: "text/plain; charset=utf-8", data: "h\u00e9llo, signed text" });
  await publish(json);
  await publish(text);
  const got = await recv.waitFor(path, 2, "event");
  assert.equal(got.length, 2);
  for (const rec of got) {
    if (rec.headers["ce-id"] === json.id) {
      assert.deepEqual(verify(secret, rec), { k: "v" });
    } else {
      assert.equal(rec.headers["ce-id"], text.id);
      assert.equal(verify(secret, rec, false), undefined);
      assert.equal(rec.body.toString("utf8"), "h\u00e9llo, signed text");
    }
  }
});

test("every attempt of a retried delivery is signed, with the same webhook-id", async () => {
  const { secret, resource, path } = await signedSubscription();
  let n = 0;
  recv.answers.set(path, (rec) => (rec.isHandshake ? { status: 200 } : { status: ++n <= 2 ? 500 : 200 }));
  const ev = event(resource, { data: { retry: true } });
  await publish(ev);
  const got = await recv.waitFor(path, 3, "event");
  assert.equal(got.length, 3, "two failures and a success");
  for (const rec of got) assert.equal(verify(secret, rec).id, ev.id);
  assert.equal(new Set(got.map((r) => r.headers["webhook-id"])).size, 1, "one webhook-id across retries");
});

test("the verifier rejects a tampered body and a wrong secret", async () => {
  const { secret, resource, path } = await signedSubscription();
  const ev = event(resource, { data: { amount: 10 } });
  await publish(ev);
  const [rec] = await recv.waitFor(path, 1, "event");
  assert.ok(rec);
  assert.equal(verify(secret, rec).id, ev.id);
  const tampered = rec.body.toString("utf8").replace('"amount":10', '"amount":99');
  assert.notEqual(tampered, rec.body.toString("utf8"));
  assert.throws(() => new Webhook(secret).verify(tampered, rec.headers), WebhookVerificationError);
  assert.throws(() => verify(newSigningSecret(32), rec), WebhookVerificationError);
  assert.throws(() => new Webhook(secret).verify(rec.body.toString("utf8"),
    { ...rec.headers, "webhook-id": rec.headers["webhook-id"] + "x" }), WebhookVerificationError);
});

test("no signature headers without a signingSecret", async () => {
  const resource = freshResource();
  const path = recv.uniquePath("plain");
  await srv.subscribe({ endPoint: recv.url(path), resourceFilter: resource });
  await publish(event(resource));
  const got = await recv.waitFor(path, 1, "event");
  assert.equal(got.length, 1);
  for (const rec of recv.on(path)) {
    for (const h of ["webhook-id", "webhook-timestamp", "webhook-signature"]) assert.equal(rec.headers[h], undefined);
  }
});
