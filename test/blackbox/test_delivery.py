"""Webhook delivery (api.md §5): the request (body = the stored event, headers), matching on resource,
subject and type, delete taking effect for the very next event, duplicates not delivered again, retries
on a millisecond `--retry-schedule` (exact attempt counts, gaps at least the delays), redirects as
failures, dead letters and redeliver (extension)."""

import json
import os
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIMING_SLACK  # noqa: E402
from harness import (BBTestCase, JSON_UTF8, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event,  # noqa: E402
                     fresh_resource, make_token, new_secret_file, wait_until)
from receiver import OK, Answer, Receiver  # noqa: E402

RETRY_SCHEDULE = (0.05, 0.10, 0.15)      # 4 attempts in all
ATTEMPTS = len(RETRY_SCHEDULE) + 1
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
DEADLETTER_KEYS = {"eventId", "sequence", "attempts", "lastStatus", "lastError", "deadAt"}
QUIET = 0.8  # seconds to wait to be sure nothing more arrives (the whole schedule is 0.3 s)


class DeliveryTestBase(BBTestCase):
    """A dev-profile server with `--auth jwt`, a millisecond retry schedule and one receiver."""

    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-dlv-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", "allow-all",
            "--retry-schedule", ",".join("%dms" % round(d * 1000) for d in RETRY_SCHEDULE),
            "--validation-schedule", "100ms,100ms", *cls.EXTRA)
        cls.tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="ttd")
        cls.other = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="skd")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def subscribe(self, resource, path=None, event_answer=None, recv=None, tok=None, **filters):
        """Creates a subscription on recv (default: the class receiver) for resource, waits until it is
        validated, and returns (subscription JSON, path). event_answer: what the receiver answers events
        (handshakes are answered 200)."""
        recv = recv or self.recv
        path = path or recv.unique_path("dlv")
        if event_answer is not None:
            recv.handshake_then(path, event_answer)
        body = {"endPoint": recv.url(path), "resourceFilter": resource}
        body.update(filters)
        r = self.srv.create_subscription(body, tok or self.tok)
        self.assertStatus(r, 201)
        sub = r.json()
        got = self.srv.wait_validated(sub["id"], tok or self.tok, timeout=10)
        self.assertIsNotNone(got)
        self.assertIs(got["validated"], True, "subscription %r never validated" % (sub,))
        return sub, path

    def publish(self, ev):
        r = self.srv.publish(ev, self.tok)
        self.assertStatus(r, 200)

    def polled(self, resource):
        r = self.srv.poll("resource=%s&after=0&size=1000" % resource, self.tok)
        return self.assertPollPage(r)

    def event_ids(self, path, recv=None):
        return [r.json()["id"] for r in (recv or self.recv).events(path)]

    def wait_deadletters(self, sub_id, count=1, timeout=10.0, tok=None):
        def get():
            r = self.srv.deadletters(sub_id, tok or self.tok)
            if r.status != 200:
                return r
            return r if len(r.json()) >= count else None
        r = wait_until(get, timeout=timeout)
        if r is None:
            r = self.srv.deadletters(sub_id, tok or self.tok)
        self.assertStatus(r, 200)
        self.assertEqual((r.headers.get("content-type") or "").split(";")[0].strip(), "application/json")
        return r.json()

    def assertDeadLetter(self, dl, ev, attempts, status=None, error=None):
        self.assertTrue({"eventId", "sequence", "attempts", "deadAt"} <= set(dl), repr(dl))
        self.assertTrue(set(dl) <= DEADLETTER_KEYS, repr(dl))
        self.assertEqual(dl["eventId"], ev["id"])
        self.assertIsInstance(dl["sequence"], int)
        self.assertGreater(dl["sequence"], 0)
        self.assertEqual(dl["attempts"], attempts)
        self.assertRegex(dl["deadAt"], TIME_RE)
        if status is not None:
            self.assertEqual(dl.get("lastStatus"), status, repr(dl))
        if error is not None:
            self.assertIn("lastError", dl, repr(dl))
            self.assertIsInstance(dl["lastError"], str)
            self.assertTrue(dl["lastError"].strip())
            if error is not True:
                self.assertRegex(dl["lastError"], error)

    def assertGaps(self, reqs, schedule=RETRY_SCHEDULE):
        for i, want in enumerate(schedule[:len(reqs) - 1]):
            gap = reqs[i + 1].t - reqs[i].t
            self.assertGreaterEqual(gap, want - TIMING_SLACK, "attempt %d came %.4f s after attempt %d; the schedule "
                                    "says at least %.3f s" % (i + 2, gap, i + 1, want))


class DeliveryTest(DeliveryTestBase):

    def test_body_and_headers(self):
        res = fresh_resource()
        sub, path = self.subscribe(res)
        evs = [
            event(resource=res, subject="/party/1", time="2024-05-01T12:00:00.5+02:00", data={"a": [1, 2, {"b": None}]},
                  resourceinstance="123/abc", alternativesubject="/person/1", myext=True, num=5,
                  dataschema="https://example.com/schema.json"),
            event(resource=res, data_base64="AAEC/w==", datacontenttype="application/octet-stream"),
            event(resource=res, type="plain.text", data="h\u00e9llo \u2603"),
        ]
        for ev in evs:
            self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path, timeout=10), set())
        time.sleep(QUIET)
        stored = {e["id"]: e for e in self.polled(res)}
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), len(evs), "each event once: %r" % (reqs,))
        for req in reqs:
            self.assertEqual(req.method, "POST")
            self.assertEqual(req.path, path)
            self.assertEqual(req.headers.get("content-type"), JSON_UTF8, repr(req.raw_headers))
            self.assertEqual(req.headers.get("host"), "127.0.0.1:%d" % self.recv.port)
            if "content-length" in req.headers:
                self.assertEqual(int(req.headers["content-length"]), len(req.body))
            doc = req.json()
            self.assertEqual(doc, stored[doc["id"]], "the webhook body is the event as the poll API returns it")
        # coercions the store did (extension values as strings, time in UTC) are what the webhook sees
        first = [r.json() for r in reqs if r.json()["id"] == evs[0]["id"]][0]
        self.assertEqual(first["myext"], "true")
        self.assertEqual(first["num"], "5")
        self.assertTrue(first["time"].endswith("Z"))

    def test_burst_each_exactly_once(self):
        res = fresh_resource()
        _, path = self.subscribe(res)
        evs = [event(resource=res, subject="/party/%d" % (i % 5)) for i in range(60)]
        conn = self.srv.connection()
        try:
            for ev in evs:
                self.assertStatus(self.srv.publish(ev, self.tok, conn=conn), 200)
        finally:
            conn.close()
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path, timeout=20), set())
        time.sleep(QUIET)
        ids = self.event_ids(path)
        self.assertEqual(len(ids), len(evs), "without a crash every event is delivered exactly once")
        self.assertEqual(sorted(ids), sorted(e["id"] for e in evs))

    def test_big_event_body(self):
        res = fresh_resource()
        _, path = self.subscribe(res)
        ev = event(resource=res, data={"blob": "x" * 150000, "n": list(range(2000))})  # about 160 KB
        self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=10), set())
        req = self.recv.events(path)[0]
        self.assertEqual(req.json(), self.polled(res)[0])

    def test_delete_mid_retry_stops_retries(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(500))
        # a slower schedule would be nicer; with 50/100/150 ms, delete right after the first attempt
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(len(self.recv.wait_for(1, path, "event", timeout=10)), 1)
        self.assertStatus(self.srv.delete_subscription(sub["id"], self.tok), 200)
        n = len(self.recv.events(path))
        time.sleep(QUIET)
        self.assertLessEqual(len(self.recv.events(path)), n + 1,
                             "a deleted subscription's retries stop (at most one already in flight)")
        r = self.srv.deadletters(sub["id"], self.tok)
        self.assertStatus(r, 404)

    def test_receiver_connection_quirks(self):
        # whatever the receiver does with its connections after a 2xx, every event is delivered and
        # nothing is dead-lettered: Connection: close, a silent close after the answer (a stale pooled
        # connection for the next request), a chunked answer body, a big answer body
        quirks = {
            "connection-close": Answer(200, headers={"Connection": "close"}),
            "silent-close": Answer(200, close_after=True),
            "chunked": Answer(200, body=b"ok" * 20000, chunked=True),
        }
        for name, answer in quirks.items():
            with self.subTest(quirk=name):
                res = fresh_resource()
                sub, path = self.subscribe(res, event_answer=answer)
                evs = [event(resource=res) for _ in range(8)]
                for ev in evs:
                    self.publish(ev)
                    time.sleep(0.02)
                self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path, timeout=15), set())
                time.sleep(QUIET)
                self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])
                if name != "silent-close":  # a request on a stale connection may be retried
                    self.assertEqual(len(self.recv.events(path)), len(evs))

    def test_big_answer_body_is_success(self):
        # api.md §5: "A 2xx is success". The answer's body is of no interest to the server; a 2xx with
        # a large body (1 MiB here, plain and chunked) is still a delivered event, not a failure to retry.
        for name, answer in (("plain", Answer(200, body=b"z" * (1 << 20))),
                             ("chunked", Answer(200, body=b"z" * (1 << 20), chunked=True))):
            with self.subTest(body=name):
                res = fresh_resource()
                sub, path = self.subscribe(res, event_answer=answer)
                ev = event(resource=res)
                self.publish(ev)
                self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=10), set())
                time.sleep(QUIET)
                self.assertEqual(len(self.recv.events(path)), 1, "a 2xx is success: no retry")
                self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])

    def test_same_endpoint_two_subscriptions(self):
        # two subscriptions of one consumer on one endpoint, both matching: one POST per subscription
        res = fresh_resource()
        path = self.recv.unique_path("shared")
        self.subscribe(res, path=path)
        self.subscribe(res, path=path, typeFilter="only.this")
        e1 = event(resource=res, type="only.this")
        e2 = event(resource=res, type="other")
        self.publish(e1)
        self.publish(e2)
        self.recv.wait_for(3, path, "event", timeout=10)
        time.sleep(QUIET)
        self.assertEqual(sorted(self.event_ids(path)), sorted([e1["id"], e1["id"], e2["id"]]))

    def test_endpoint_query_kept(self):
        res = fresh_resource()
        path = self.recv.unique_path("q")
        self.subscribe(res, path=path + "?code=abc%2Fdef&x=1")
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path), set())
        self.assertEqual(self.recv.events(path)[0].path, path + "?code=abc%2Fdef&x=1")

    def test_many_subscriptions_fan_out(self):
        res = fresh_resource()
        paths = []
        for _ in range(25):
            path = self.recv.unique_path("many")
            r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
            self.assertStatus(r, 201)
            paths.append((path, r.json()["id"]))
        for _, sid in paths:
            self.assertIs(self.srv.wait_validated(sid, self.tok, timeout=15)["validated"], True)
        ev = event(resource=res)
        self.publish(ev)
        for path, _ in paths:
            self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=10), set(), path)
        time.sleep(QUIET)
        for path, _ in paths:
            self.assertEqual(len(self.recv.events(path)), 1)

    def test_fan_out_and_resource_filter(self):
        r1, r2 = fresh_resource(), fresh_resource()
        s1a, p1a = self.subscribe(r1)
        s1b, p1b = self.subscribe(r1)
        s2, p2 = self.subscribe(r2)
        e1 = event(resource=r1)
        e2 = event(resource=r2)
        e3 = event(resource=fresh_resource())
        for ev in (e1, e2, e3):
            self.publish(ev)
        for p in (p1a, p1b):
            self.assertEqual(self.recv.wait_event_ids([e1["id"]], p), set())
        self.assertEqual(self.recv.wait_event_ids([e2["id"]], p2), set())
        time.sleep(QUIET)
        self.assertEqual(self.event_ids(p1a), [e1["id"]])
        self.assertEqual(self.event_ids(p1b), [e1["id"]])
        self.assertEqual(self.event_ids(p2), [e2["id"]])

    def test_subject_filter(self):
        res = fresh_resource()
        _, p_subj = self.subscribe(res, subjectFilter="/party/1")
        _, p_all = self.subscribe(res)
        e1 = event(resource=res, subject="/party/1")
        e2 = event(resource=res, subject="/party/2")
        e3 = event(resource=res)  # no subject
        e4 = event(resource=res, subject="/party/10")
        for ev in (e1, e2, e3, e4):
            self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in (e1, e2, e3, e4)], p_all), set())
        self.assertEqual(self.recv.wait_event_ids([e1["id"]], p_subj), set())
        time.sleep(QUIET)
        self.assertEqual(self.event_ids(p_subj), [e1["id"]])
        self.assertEqual(sorted(self.event_ids(p_all)), sorted(e["id"] for e in (e1, e2, e3, e4)))

    def test_type_filter(self):
        res = fresh_resource()
        _, p_type = self.subscribe(res, typeFilter="thing.created")
        _, p_both = self.subscribe(res, typeFilter="thing.created", subjectFilter="/party/7")
        e1 = event(resource=res, type="thing.created", subject="/party/7")
        e2 = event(resource=res, type="thing.deleted", subject="/party/7")
        e3 = event(resource=res, type="thing.created.more")
        e4 = event(resource=res, type="Thing.Created")
        e5 = event(resource=res, type="thing.created", subject="/party/8")
        marker = event(resource=res, type="thing.created", subject="/party/7")
        for ev in (e1, e2, e3, e4, e5, marker):
            self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([e1["id"], e5["id"], marker["id"]], p_type), set())
        self.assertEqual(self.recv.wait_event_ids([e1["id"], marker["id"]], p_both), set())
        time.sleep(QUIET)
        self.assertEqual(sorted(self.event_ids(p_type)), sorted([e1["id"], e5["id"], marker["id"]]))
        self.assertEqual(sorted(self.event_ids(p_both)), sorted([e1["id"], marker["id"]]))

    def test_delete_stops_next_event(self):
        res = fresh_resource()
        sub, path = self.subscribe(res)
        _, control = self.subscribe(res)
        e1 = event(resource=res)
        self.publish(e1)
        self.assertEqual(self.recv.wait_event_ids([e1["id"]], path), set())
        r = self.srv.delete_subscription(sub["id"], self.tok)
        self.assertStatus(r, 200)
        e2 = event(resource=res)
        self.publish(e2)
        self.assertEqual(self.recv.wait_event_ids([e2["id"]], control), set())
        time.sleep(QUIET)
        self.assertEqual(self.event_ids(path), [e1["id"]], "the very next event is not delivered after DELETE")

    def test_duplicate_publish_not_delivered_again(self):
        res = fresh_resource()
        _, path = self.subscribe(res)
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path), set())
        self.publish(dict(ev))
        # even with a different body, same source+id is a duplicate
        self.publish(dict(ev, type="changed.type"))
        marker = event(resource=res)
        self.publish(marker)
        self.assertEqual(self.recv.wait_event_ids([marker["id"]], path), set())
        time.sleep(QUIET)
        self.assertEqual(sorted(self.event_ids(path)), sorted([ev["id"], marker["id"]]))

    def test_batch_publish_delivered(self):
        # api.md §1 extension: a batch is stored like single events; its duplicate is not delivered again
        res = fresh_resource()
        _, path = self.subscribe(res)
        first = event(resource=res)
        self.publish(first)
        self.assertEqual(self.recv.wait_event_ids([first["id"]], path), set())
        batch = [dict(first), event(resource=res), event(resource=res)]
        r = self.srv.publish(json.dumps(batch), self.tok, content_type="application/cloudevents-batch+json")
        self.assertStatus(r, 200)
        want = [e["id"] for e in batch]
        self.assertEqual(self.recv.wait_event_ids(want, path), set())
        time.sleep(QUIET)
        self.assertEqual(sorted(self.event_ids(path)), sorted(want), "the batch's duplicate is not delivered again")
        stored = {e["id"]: e for e in self.polled(res)}
        for req in self.recv.events(path):
            self.assertEqual(req.json(), stored[req.json()["id"]])

    def test_binary_publish_delivered_structured(self):
        # api.md §1 extension: binary mode; the webhook gets the stored (structured) event
        res = fresh_resource()
        _, path = self.subscribe(res)
        bin_id = "bin-" + event()["id"]
        r = self.srv.publish(b'{"k":"v"}', self.tok, content_type="application/vnd.example+json",
                             headers={"ce-specversion": "1.0", "ce-id": bin_id, "ce-source": "https://example.com/b",
                                      "ce-type": "bin.type", "ce-resource": res})
        self.assertStatus(r, 200)
        self.assertEqual(self.recv.wait_event_ids([bin_id], path), set())
        req = self.recv.events(path)[0]
        self.assertEqual(req.headers.get("content-type"), JSON_UTF8)
        self.assertEqual(req.json(), self.polled(res)[0])

    def test_non_2xx_success_codes(self):
        for status in (201, 202, 204):
            with self.subTest(status=status):
                res = fresh_resource()
                sub, path = self.subscribe(res, event_answer=Answer(status))
                ev = event(resource=res)
                self.publish(ev)
                self.assertEqual(self.recv.wait_event_ids([ev["id"]], path), set())
                time.sleep(QUIET)
                self.assertEqual(len(self.recv.events(path)), 1, "a %d is success: no retry" % status)
                self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])

    def test_retry_timing_and_dead_letter(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(500))
        ev = event(resource=res)
        t0 = time.monotonic()
        self.publish(ev)
        reqs = self.recv.wait_for(ATTEMPTS, path, "event", timeout=10)
        self.assertEqual(len(reqs), ATTEMPTS)
        dls = self.wait_deadletters(sub["id"])
        time.sleep(QUIET)
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), ATTEMPTS, "exactly %d attempts: %r" % (ATTEMPTS, reqs))
        self.assertLess(reqs[-1].t - t0, 8.0)
        self.assertGaps(reqs)
        for req in reqs:
            self.assertEqual(req.json()["id"], ev["id"])
        self.assertEqual(len(dls), 1, repr(dls))
        self.assertDeadLetter(dls[0], ev, ATTEMPTS, status=500)

    def test_success_after_failures_no_dead_letter(self):
        res = fresh_resource()
        path = self.recv.unique_path("dlv")
        sub, _ = self.subscribe(res, path=path)
        self.recv.script(path, [Answer(500), Answer(503)], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        reqs = self.recv.wait_for(3, path, "event", timeout=10)
        time.sleep(QUIET)
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), 3, repr(reqs))
        self.assertGaps(reqs)
        self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])

    def test_connection_dropped_is_failure(self):
        res = fresh_resource()
        path = self.recv.unique_path("dlv")
        sub, _ = self.subscribe(res, path=path)
        self.recv.script(path, [Answer(close=True)], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        reqs = self.recv.wait_for(2, path, "event", timeout=10)
        time.sleep(QUIET)
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), 2, "a dropped connection is a failure, retried once here: %r" % (reqs,))
        self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])

    def test_redirect_is_failure(self):
        for status in (301, 302, 307, 308):
            with self.subTest(status=status):
                res = fresh_resource()
                target = self.recv.unique_path("redirect-target")
                sub, path = self.subscribe(res, event_answer=Answer(status, location=self.recv.url(target)))
                ev = event(resource=res)
                self.publish(ev)
                self.assertEqual(len(self.recv.wait_for(ATTEMPTS, path, "event", timeout=10)), ATTEMPTS)
                dls = self.wait_deadletters(sub["id"])
                time.sleep(QUIET)
                self.assertEqual(len(self.recv.events(path)), ATTEMPTS)
                self.assertEqual(self.recv.requests(target), [], "redirects are not followed")
                self.assertEqual(len(dls), 1)
                self.assertDeadLetter(dls[0], ev, ATTEMPTS, status=status)

    def test_connection_refused_dead_letter(self):
        res = fresh_resource()
        gone = Receiver()
        try:
            sub, path = self.subscribe(res, recv=gone)
        finally:
            gone.close()
        ev = event(resource=res)
        self.publish(ev)
        dls = self.wait_deadletters(sub["id"])
        self.assertEqual(len(dls), 1)
        self.assertDeadLetter(dls[0], ev, ATTEMPTS, error=True)
        self.assertNotIn("lastStatus", dls[0], "no status when no answer came: %r" % (dls[0],))

    def test_dead_letters_accumulate_in_order(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(503))
        evs = [event(resource=res) for _ in range(3)]
        for ev in evs:
            self.publish(ev)
        dls = self.wait_deadletters(sub["id"], count=3)
        time.sleep(QUIET)
        dls = self.srv.deadletters(sub["id"], self.tok).json()
        self.assertEqual(len(dls), 3, repr(dls))
        self.assertEqual(sorted(d["eventId"] for d in dls), sorted(e["id"] for e in evs))
        self.assertEqual(len({d["sequence"] for d in dls}), 3)
        for d in dls:
            self.assertDeadLetter(d, [e for e in evs if e["id"] == d["eventId"]][0], ATTEMPTS, status=503)
        self.assertEqual(len(self.recv.events(path)), 3 * ATTEMPTS)
        # the sequence numbers follow the publish order
        by_id = {d["eventId"]: d["sequence"] for d in dls}
        self.assertEqual([by_id[e["id"]] for e in evs], sorted(by_id.values()))

    def test_redeliver_after_fix(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(500))
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(len(self.wait_deadletters(sub["id"])), 1)
        time.sleep(0.2)
        self.assertEqual(len(self.recv.events(path)), ATTEMPTS)
        self.recv.handshake_then(path, OK)
        r = self.srv.redeliver(sub["id"], self.tok)
        self.assertStatus(r, 202)
        self.assertEqual(r.json(), {"requeued": 1})
        reqs = self.recv.wait_for(ATTEMPTS + 1, path, "event", timeout=10)
        self.assertEqual(len(reqs), ATTEMPTS + 1)
        self.assertEqual(reqs[-1].json(), self.polled(res)[0])
        time.sleep(QUIET)
        self.assertEqual(len(self.recv.events(path)), ATTEMPTS + 1, "delivered once, no further retry")
        self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [],
                         "a requeued dead letter leaves the list")
        r = self.srv.redeliver(sub["id"], self.tok)
        self.assertStatus(r, 202)
        self.assertEqual(r.json(), {"requeued": 0})

    def test_redeliver_restarts_schedule(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(500))
        evs = [event(resource=res) for _ in range(2)]
        for ev in evs:
            self.publish(ev)
        self.assertEqual(len(self.wait_deadletters(sub["id"], count=2)), 2)
        time.sleep(0.2)
        self.assertEqual(len(self.recv.events(path)), 2 * ATTEMPTS)
        self.recv.clear()
        r = self.srv.redeliver(sub["id"], self.tok)
        self.assertStatus(r, 202)
        self.assertEqual(r.json(), {"requeued": 2})
        reqs = self.recv.wait_for(2 * ATTEMPTS, path, "event", timeout=10)
        self.assertEqual(len(reqs), 2 * ATTEMPTS)
        dls = self.wait_deadletters(sub["id"], count=2)
        time.sleep(QUIET)
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), 2 * ATTEMPTS, "attempt 1 again, then the whole schedule: %r" % (reqs,))
        for ev in evs:
            mine = [r for r in reqs if r.json()["id"] == ev["id"]]
            self.assertEqual(len(mine), ATTEMPTS)
            self.assertGaps(mine)
        dls = self.srv.deadletters(sub["id"], self.tok).json()
        self.assertEqual(len(dls), 2)
        for d in dls:
            self.assertDeadLetter(d, [e for e in evs if e["id"] == d["eventId"]][0], ATTEMPTS, status=500)

    def test_deadletters_empty_and_ownership(self):
        res = fresh_resource()
        sub, _ = self.subscribe(res)
        r = self.srv.deadletters(sub["id"], self.tok)
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), [])
        for resp in (self.srv.deadletters(sub["id"], self.other), self.srv.redeliver(sub["id"], self.other)):
            self.assertStatus(resp, 403)
            self.assertEmptyBody(resp)
        for resp in (self.srv.deadletters(999999999, self.tok), self.srv.redeliver(999999999, self.tok)):
            self.assertStatus(resp, 404)
            self.assertEmptyBody(resp)
        for resp in (self.srv.deadletters(sub["id"], None), self.srv.redeliver(sub["id"], None)):
            self.assertStatus(resp, 401)


if __name__ == "__main__":
    unittest.main()
