"""The validation handshake (api.md §4 "Validation handshake"): its exact request, a second handshake
for a deduplicated POST, validated after a 2xx, retries on `--validation-schedule`, giving up, and
that unvalidated subscriptions receive no events; the handshake source follows `--base-url`."""

import os
import re
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIMING_SLACK  # noqa: E402
from harness import (BBTestCase, JSON_UTF8, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, SUBS_PATH, event,  # noqa: E402
                     fresh_resource, make_token, new_secret_file)
from receiver import HANDSHAKE_TYPE, OK, Answer, Receiver  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# first attempt, then retries after 100 ms, 200 ms, 300 ms: 4 attempts in all
VALIDATION_SCHEDULE = (0.1, 0.2, 0.3)


class HandshakeTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-hs-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", "allow-all",
            "--validation-schedule", ",".join("%dms" % (d * 1000) for d in VALIDATION_SCHEDULE),
            "--retry-schedule", "50ms,100ms,150ms")
        cls.tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="ttd")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def create(self, body):
        r = self.srv.create_subscription(body, self.tok)
        self.assertStatus(r, 201)
        return r.json()

    def assertHandshake(self, req, sub_id, base_url):
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.headers.get("content-type"), JSON_UTF8, repr(req.raw_headers))
        self.assertEqual(int(req.headers.get("content-length", "-1")), len(req.body),
                         "handshake must carry a Content-Length matching the body: %r" % (req.raw_headers,))
        doc = req.json()
        self.assertIsInstance(doc, dict)
        self.assertEqual(set(doc), {"specversion", "id", "source", "type"}, repr(doc))
        self.assertEqual(doc["specversion"], "1.0")
        self.assertEqual(doc["type"], HANDSHAKE_TYPE)
        self.assertEqual(doc["source"], "%s%s/%d" % (base_url, SUBS_PATH, sub_id))
        self.assertRegex(doc["id"], UUID_RE)
        self.assertEqual(str(uuid.UUID(doc["id"])), doc["id"])
        return doc

    def test_handshake_request_shape(self):
        path = self.recv.unique_path("hs")
        ep = self.recv.url(path + "?tenant=1&x=a%20b")
        sub = self.create({"endPoint": ep, "resourceFilter": fresh_resource()})
        reqs = self.recv.wait_for(1, path, timeout=10)
        self.assertEqual(len(reqs), 1, "one handshake expected: %r" % (reqs,))
        req = reqs[0]
        self.assertEqual(req.path, path + "?tenant=1&x=a%20b", "POST goes to the endpoint's path and query")
        self.assertEqual(req.headers.get("host"), "127.0.0.1:%d" % self.recv.port)
        self.assertHandshake(req, sub["id"], self.srv.base_url)
        # answered 200 at once: no retry follows
        time.sleep(0.8)
        self.assertEqual(len(self.recv.requests(path)), 1)

    def test_validated_after_2xx(self):
        for status in (200, 201, 202, 204, 299):
            with self.subTest(status=status):
                path = self.recv.unique_path("hs2xx")
                self.recv.set_default(Answer(status), path)
                sub = self.create({"endPoint": self.recv.url(path), "resourceFilter": fresh_resource()})
                self.assertIs(sub["validated"], False)
                got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
                self.assertIsNotNone(got)
                self.assertIs(got["validated"], True, "a %d handshake answer validates" % status)
                self.assertEqual(len(self.recv.handshakes(path)), 1)
                # the list shows it validated too
                subs = self.srv.list_subscriptions(self.tok).json()["subscriptions"]
                self.assertIs([s for s in subs if s["id"] == sub["id"]][0]["validated"], True)

    def test_validated_after_2xx_with_big_answer(self):
        # "Any 2xx sets validated": the answer's body does not matter, even when it is large
        path = self.recv.unique_path("hsbig")
        self.recv.set_default(Answer(200, body=b"y" * (1 << 20)), path)
        sub = self.create({"endPoint": self.recv.url(path), "resourceFilter": fresh_resource()})
        got = self.srv.wait_validated(sub["id"], self.tok, timeout=5)
        self.assertIs(got["validated"], True, "a 200 with a 1 MiB body must validate")

    def test_dedupe_sends_second_handshake(self):
        path = self.recv.unique_path("hsdup")
        body = {"endPoint": self.recv.url(path), "resourceFilter": fresh_resource(), "typeFilter": "t.x"}
        a = self.srv.create_subscription(body, self.tok)
        self.assertStatus(a, 201)
        self.assertEqual(len(self.recv.wait_for(1, path, timeout=10)), 1)
        self.srv.wait_validated(a.json()["id"], self.tok)
        b = self.srv.create_subscription(body, self.tok)
        self.assertStatus(b, 201)
        self.assertEqual(b.json()["id"], a.json()["id"])
        self.assertEqual(b.headers.get("location"), a.headers.get("location"))
        reqs = self.recv.wait_for(2, path, timeout=10)
        self.assertEqual(len(reqs), 2, "a deduplicated POST sends the handshake again: %r" % (reqs,))
        d1 = self.assertHandshake(reqs[0], a.json()["id"], self.srv.base_url)
        d2 = self.assertHandshake(reqs[1], a.json()["id"], self.srv.base_url)
        self.assertNotEqual(d1["id"], d2["id"], "every handshake has a new uuid")
        time.sleep(0.5)
        self.assertEqual(len(self.recv.requests(path)), 2)

    def test_fails_then_succeeds_on_retry(self):
        path = self.recv.unique_path("hsretry")
        self.recv.script(path, [Answer(500), Answer(503)], default=OK)
        sub = self.create({"endPoint": self.recv.url(path), "resourceFilter": fresh_resource()})
        got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
        self.assertIs(got["validated"], True)
        reqs = self.recv.wait_for(3, path, timeout=5)
        time.sleep(0.6)
        reqs = self.recv.requests(path)
        self.assertEqual(len(reqs), 3, "two failures and one success: %r" % (reqs,))
        for req in reqs:
            self.assertHandshake(req, sub["id"], self.srv.base_url)
        for i, want in enumerate(VALIDATION_SCHEDULE[:2]):
            gap = reqs[i + 1].t - reqs[i].t
            self.assertGreaterEqual(gap, want - TIMING_SLACK, "retry %d came %.3f s after the previous, schedule says %.3f"
                                    % (i + 1, gap, want))

    def test_gives_up_and_unvalidated_gets_nothing(self):
        path = self.recv.unique_path("hsfail")
        # a redirect, a client error, a server error, a 1xx-free non-2xx: none validates
        self.recv.script(path, [Answer(500), Answer(302, location=self.recv.url("/elsewhere")), Answer(404),
                                Answer(400)], default=OK)
        res = fresh_resource()
        sub = self.create({"endPoint": self.recv.url(path), "resourceFilter": res})
        reqs = self.recv.wait_for(4, path, timeout=10)
        self.assertEqual(len(reqs), 4)
        time.sleep(1.0)  # the schedule is used up: no fifth attempt (which would have been answered 200)
        reqs = self.recv.requests(path)
        self.assertEqual(len(reqs), 4, "1 attempt + 3 retries, then give up: %r" % (reqs,))
        for i, want in enumerate(VALIDATION_SCHEDULE):
            self.assertGreaterEqual(reqs[i + 1].t - reqs[i].t, want - TIMING_SLACK)
        self.assertEqual(self.recv.requests("/elsewhere"), [], "redirects are not followed")
        g = self.srv.get_subscription(sub["id"], self.tok)
        self.assertStatus(g, 200)
        self.assertIs(g.json()["validated"], False)
        # an unvalidated subscription gets no events
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev, self.tok), 200)
        time.sleep(1.0)
        self.assertEqual(self.recv.events(path), [], "unvalidated subscriptions receive nothing")
        # posting it again restarts the handshake; now answered 200, it validates and events flow
        again = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertStatus(again, 201)
        self.assertEqual(again.json()["id"], sub["id"])
        got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
        self.assertIs(got["validated"], True)
        self.assertEqual(len(self.recv.handshakes(path)), 5)
        ev2 = event(resource=res)
        self.assertStatus(self.srv.publish(ev2, self.tok), 200)
        self.assertEqual(self.recv.wait_event_ids([ev2["id"]], path, timeout=10), set())
        ids = [r.json()["id"] for r in self.recv.events(path)]
        self.assertNotIn(ev["id"], ids, "the event published while unvalidated is not delivered later")

    def test_unvalidated_while_handshake_pending(self):
        # The handshake hangs (no answer yet): the subscription is not validated and gets no event.
        path = self.recv.unique_path("hspending")
        self.recv.script(path, [Answer(200, delay=3.0)], default=OK)
        res = fresh_resource()
        sub = self.create({"endPoint": self.recv.url(path), "resourceFilter": res})
        self.assertEqual(len(self.recv.wait_for(1, path, timeout=5)), 1)
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev, self.tok), 200)
        self.assertIs(self.srv.get_subscription(sub["id"], self.tok).json()["validated"], False)
        got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
        self.assertIs(got["validated"], True)
        time.sleep(0.5)
        self.assertEqual(self.recv.events(path), [])


class HandshakeBaseUrlTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.recv = Receiver()
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--base-url", "https://events.example.test")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()

    def test_source_uses_base_url(self):
        path = self.recv.unique_path("hsbase")
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": fresh_resource()})
        self.assertStatus(r, 201)
        sid = r.json()["id"]
        self.assertEqual(r.json()["consumer"], "/org/ttd")
        reqs = self.recv.wait_for(1, path, timeout=10)
        self.assertEqual(len(reqs), 1)
        doc = reqs[0].json()
        self.assertEqual(doc["source"], "https://events.example.test%s/%d" % (SUBS_PATH, sid))
        self.assertEqual(doc["type"], HANDSHAKE_TYPE)


if __name__ == "__main__":
    unittest.main()
