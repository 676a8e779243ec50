"""CloudEvents beyond Altinn (extensions), part 2: deliveries as a receiver gets them. Standard Webhooks
signatures (verified here with an HMAC computed independently; a stable webhook-id across retries; the
handshake signed too), each content mode (structured, cloudevents, binary: headers and exact body
bytes), receiver signals (429/503 with Retry-After in seconds or as an HTTP date; 410 Gone disabling a
subscription until it is posted again)."""

import base64
import email.utils
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIMING_SLACK, JSON_UTF8, event, fresh_resource, new_signing_secret  # noqa: E402
from harness import webhook_signature  # noqa: E402
from receiver import OK, Answer  # noqa: E402
from test_extensions import ExtTestBase  # noqa: E402

CE_UTF8 = "application/cloudevents+json; charset=utf-8"
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
QUIET = 1.2  # longer than the whole 3 x 300 ms retry schedule


class SigningTest(ExtTestBase):

    def assertSigned(self, req, key, t0=None, t1=None):
        """The request carries the three Standard Webhooks headers and the signature is right for its
        exact body bytes; returns the webhook-id."""
        for h in WEBHOOK_HEADERS:
            self.assertIn(h, req.headers, "missing %s: %r" % (h, req.raw_headers))
        msg_id, ts, sig = (req.headers[h] for h in WEBHOOK_HEADERS)
        self.assertTrue(msg_id.strip(), "empty webhook-id")
        self.assertRegex(ts, r"^[0-9]+$", "webhook-timestamp is Unix seconds")
        if t0 is not None:
            self.assertGreaterEqual(int(ts), int(t0) - 1, "timestamp %s before the attempt (%s)" % (ts, t0))
        if t1 is not None:
            self.assertLessEqual(int(ts), int(t1) + 1, "timestamp %s after the attempt (%s)" % (ts, t1))
        self.assertEqual(sig, webhook_signature(key, msg_id, ts, req.body),
                         "signature of %r (id %s, ts %s)" % (req.body[:200], msg_id, ts))
        return msg_id

    def test_event_and_handshake_signed(self):
        secret, key = new_signing_secret(32)
        res = fresh_resource()
        t0 = time.time()
        sub, path = self.subscribe(res, signingSecret=secret)
        hs = self.recv.handshakes(path)
        self.assertGreaterEqual(len(hs), 1)
        hs_id = self.assertSigned(hs[0], key, t0, time.time())
        evs = [event(resource=res, data={"n": 1, "s": "h\u00e9"}), event(resource=res, subject="/party/7")]
        t0 = time.time()
        for ev in evs:
            self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path), set())
        t1 = time.time()
        reqs = self.recv.events(path)
        self.assertEqual(len(reqs), 2, repr(reqs))
        ids = [self.assertSigned(r, key, t0, t1) for r in reqs]
        self.assertEqual(len({hs_id} | set(ids)), 3, "each delivery has its own webhook-id: %r" % ([hs_id] + ids,))
        # the body signed is the body as sent: the event JSON as polled
        polled = {e["id"]: e for e in self.polled(res)}
        for r in reqs:
            self.assertEqual(r.json(), polled[r.json()["id"]])
            self.assertEqual(r.headers.get("content-type"), JSON_UTF8)

    def test_minimum_and_maximum_key_sizes(self):
        for n in (24, 64):
            with self.subTest(nbytes=n):
                secret, key = new_signing_secret(n)
                res = fresh_resource()
                _, path = self.subscribe(res, signingSecret=secret)
                ev = event(resource=res)
                self.publish(ev)
                self.assertEqual(self.recv.wait_event_ids([ev["id"]], path), set())
                self.assertSigned(self.recv.events(path)[0], key)

    def test_unsigned_without_secret(self):
        res = fresh_resource()
        _, path = self.subscribe(res)
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path), set())
        for r in self.recv.requests(path):
            for h in WEBHOOK_HEADERS:
                self.assertNotIn(h, r.headers, repr(r.raw_headers))

    def test_webhook_id_stable_across_retries(self):
        secret, key = new_signing_secret(32)
        res = fresh_resource()
        _, path = self.subscribe(res, signingSecret=secret)
        self.recv.script(path, [Answer(500), Answer(500)], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        reqs = self.recv.wait_for(3, path, "event", timeout=10)
        self.assertEqual(len(reqs), 3, repr(reqs))
        ids = [self.assertSigned(r, key) for r in reqs]
        self.assertEqual(len(set(ids)), 1, "one delivery keeps its webhook-id across retries: %r" % ids)
        for r in reqs:
            self.assertEqual(r.json()["id"], ev["id"])
        # timestamps are those of each attempt: never going back
        tss = [int(r.headers["webhook-timestamp"]) for r in reqs]
        self.assertEqual(tss, sorted(tss))
        # a later event is another delivery
        ev2 = event(resource=res)
        self.publish(ev2)
        self.assertEqual(self.recv.wait_event_ids([ev2["id"]], path), set())
        r2 = [r for r in self.recv.events(path) if r.json()["id"] == ev2["id"]][0]
        self.assertNotEqual(self.assertSigned(r2, key), ids[0])

    def test_signed_in_binary_and_cloudevents_modes(self):
        for mode in ("binary", "cloudevents"):
            with self.subTest(mode=mode):
                secret, key = new_signing_secret(40)
                res = fresh_resource()
                _, path = self.subscribe(res, signingSecret=secret, contentMode=mode)
                ev = event(resource=res, data={"k": "v"})
                self.publish(ev)
                got = self.recv.wait_for(1, path, "event")
                self.assertEqual(len(got), 1)
                self.assertSigned(got[0], key)


# ------------------------------------------------------------------------------------------------


def pct_decode(value):
    return urllib.parse.unquote(value, encoding="utf-8", errors="strict")


class ContentModeTest(ExtTestBase):

    EVENTS = [
        # JSON data (default datacontenttype), an extension, a non-ASCII subject, a time
        dict(subject="/party/\u00e6 \"q\"%", data={"a": [1, 2, {"b": None}], "s": "h\u00e9"}, myext="x y",
             time="2024-05-01T10:00:00Z", dataschema="https://example.com/s.json"),
        # text data
        dict(data="h\u00e9llo \u2603\nline 2", datacontenttype="text/plain; charset=utf-8"),
        # binary data
        dict(data_base64=base64.b64encode(bytes(range(256))).decode(), datacontenttype="application/octet-stream"),
        # a JSON string as data with a JSON content type: the body is that JSON value
        dict(data="just a string"),
        # a +json type
        dict(data=[1, "two", 3.5], datacontenttype="application/vnd.example+json"),
    ]

    def setUp(self):
        res = fresh_resource()
        self.res = res
        self.paths = {}
        for mode in ("structured", "cloudevents", "binary"):
            fields = {} if mode == "structured" else {"contentMode": mode}
            _, self.paths[mode] = self.subscribe(res, **fields)
        self.evs = [event(resource=res, **attrs) for attrs in self.EVENTS]
        for ev in self.evs:
            self.publish(ev)
        for mode, path in self.paths.items():
            got = self.recv.wait_for(len(self.evs), path, "event", timeout=10)
            self.assertEqual(len(got), len(self.evs), "%s: %r" % (mode, got))
        self.stored = {e["id"]: e for e in self.polled(res)}
        self.assertEqual(len(self.stored), len(self.evs))

    def by_id(self, mode):
        out = {}
        for r in self.recv.events(self.paths[mode]):
            key = r.headers.get("ce-id") if mode == "binary" else r.json()["id"]
            self.assertNotIn(key, out, "delivered once")
            out[key] = r
        self.assertEqual(set(out), set(self.stored))
        return out

    def test_structured_and_cloudevents(self):
        st, ce = self.by_id("structured"), self.by_id("cloudevents")
        for ev_id, stored in self.stored.items():
            with self.subTest(event=ev_id):
                a, b = st[ev_id], ce[ev_id]
                self.assertEqual(a.headers.get("content-type"), JSON_UTF8)
                self.assertEqual(b.headers.get("content-type"), CE_UTF8)
                self.assertEqual(a.json(), stored)
                self.assertEqual(a.body, b.body, "cloudevents mode sends the same bytes as structured")
                for r in (a, b):
                    self.assertFalse([k for k in r.headers if k.startswith("ce-")], repr(r.raw_headers))
                    if "content-length" in r.headers:
                        self.assertEqual(int(r.headers["content-length"]), len(r.body))

    def test_binary(self):
        got = self.by_id("binary")
        for ev_id, stored in self.stored.items():
            with self.subTest(event=ev_id, ct=stored.get("datacontenttype")):
                r = got[ev_id]
                ce = {k[3:]: v for k, v in r.headers.items() if k.startswith("ce-")}
                # every attribute but the data ones is a ce- header, and nothing else is
                want = {k: v for k, v in stored.items() if k not in ("data", "data_base64", "datacontenttype")}
                self.assertEqual(set(ce), set(want), repr(r.raw_headers))
                for k, v in want.items():
                    # values are percent-encoded where needed (HTTP binding 3.1.3.2) and never hold a raw
                    # space, double quote or non-ASCII character
                    raw = ce[k]
                    self.assertTrue(all(0x21 <= ord(c) <= 0x7e and c != '"' for c in raw),
                                    "ce-%s: %r is not encoded" % (k, raw))
                    self.assertEqual(pct_decode(raw), v, "ce-%s" % k)
                self.assertEqual(r.headers.get("content-type"), stored["datacontenttype"])
                if "data_base64" in stored:
                    self.assertEqual(r.body, base64.b64decode(stored["data_base64"]))
                elif stored["datacontenttype"].startswith("text/"):
                    self.assertEqual(r.body, stored["data"].encode("utf-8"))
                else:
                    self.assertEqual(json.loads(r.body.decode("utf-8")), stored["data"])
                if "content-length" in r.headers:
                    self.assertEqual(int(r.headers["content-length"]), len(r.body))
        # the text event's body is the exact bytes
        text_ev = self.evs[1]
        self.assertEqual(got[text_ev["id"]].body, "h\u00e9llo \u2603\nline 2".encode("utf-8"))
        self.assertEqual(got[self.evs[0]["id"]].headers["ce-subject"] and
                         pct_decode(got[self.evs[0]["id"]].headers["ce-subject"]), "/party/\u00e6 \"q\"%")

    def test_binary_event_without_data(self):
        res = fresh_resource()
        _, path = self.subscribe(res, contentMode="binary")
        ev = event(resource=res, subject="/party/1")
        self.publish(ev)
        got = self.recv.wait_for(1, path, "event")
        self.assertEqual(len(got), 1)
        r = got[0]
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers.get("ce-id"), ev["id"])
        self.assertEqual(r.headers.get("ce-subject"), "/party/1")
        self.assertEqual(r.headers.get("ce-specversion"), "1.0")


# ------------------------------------------------------------------------------------------------


class ReceiverSignalTest(ExtTestBase):

    def two_attempts(self, first_answer):
        """Publishes one event to a new subscription whose endpoint answers first_answer and then 200;
        returns the two attempts."""
        res = fresh_resource()
        _, path = self.subscribe(res)
        self.recv.script(path, [first_answer], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        reqs = self.recv.wait_for(2, path, "event", timeout=15)
        self.assertEqual(len(reqs), 2, repr(reqs))
        for r in reqs:
            self.assertEqual(r.json()["id"], ev["id"])
        return reqs

    def test_retry_after_seconds_429(self):
        a, b = self.two_attempts(Answer(429, headers={"Retry-After": "1"}))
        gap = b.t - a.t
        self.assertGreaterEqual(gap, 1.0 - TIMING_SLACK,
                                "429 Retry-After: 1 delays the next attempt by 1 s (schedule 300 ms); gap %.3f" % gap)

    def test_retry_after_seconds_503(self):
        a, b = self.two_attempts(Answer(503, headers={"Retry-After": "2"}))
        gap = b.t - a.t
        self.assertGreaterEqual(gap, 2.0 - TIMING_SLACK, "gap %.3f" % gap)

    def test_retry_after_http_date(self):
        # an HTTP date has whole seconds: 3 s ahead, rounded down, is at least 2 s after the answer
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        a, b = self.two_attempts(Answer(429, headers={"Retry-After": when}))
        gap = b.t - a.t
        self.assertGreaterEqual(gap, 2.0 - 0.1, "Retry-After: %s; gap %.3f" % (when, gap))

    def test_retry_after_ignored_on_500(self):
        # only 429 and 503 are a request to wait; a 500 follows the schedule (300 ms)
        a, b = self.two_attempts(Answer(500, headers={"Retry-After": "5"}))
        gap = b.t - a.t
        self.assertGreaterEqual(gap, 0.3 - TIMING_SLACK)
        self.assertLess(gap, 4.0, "a 500's Retry-After is not honoured; gap %.3f" % gap)

    def test_retry_after_in_the_past_or_invalid_follows_schedule(self):
        past = email.utils.formatdate(time.time() - 3600, usegmt=True)
        for value in (past, "soon", "-5", "1.5x"):
            with self.subTest(retry_after=value):
                a, b = self.two_attempts(Answer(503, headers={"Retry-After": value}))
                gap = b.t - a.t
                self.assertGreaterEqual(gap, 0.3 - TIMING_SLACK, "the schedule still applies; gap %.3f" % gap)
                self.assertLess(gap, 4.0, "Retry-After %r asks for no delay; gap %.3f" % (value, gap))

    def test_retry_after_zero_keeps_schedule(self):
        a, b = self.two_attempts(Answer(429, headers={"Retry-After": "0"}))
        self.assertGreaterEqual(b.t - a.t, 0.3 - TIMING_SLACK, "Retry-After never shortens the schedule")

    def test_gone_on_a_retry_disables(self):
        res = fresh_resource()
        sub, path = self.subscribe(res)
        self.recv.script(path, [Answer(500), Answer(410)], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        self.assertEqual(len(self.recv.wait_for(2, path, "event")), 2)
        self.assertIs(self.wait_disabled(sub["id"]).get("disabled"), True)
        time.sleep(QUIET)
        self.assertEqual(len(self.recv.events(path)), 2, "no attempt after the 410")
        r = self.srv.deadletters(sub["id"], self.tok)
        self.assertStatus(r, 200)

    def test_gone_stops_other_pending_retries(self):
        # a retry of one event is pending when another event's delivery gets 410: the subscription is
        # disabled, so the pending retry is not sent either ("no more deliveries")
        res = fresh_resource()
        sub, path = self.subscribe(res)
        self.recv.script(path, [Answer(500), Answer(410)], default=OK)
        ev1, ev2 = event(resource=res), event(resource=res)
        self.publish(ev1)
        self.assertEqual(len(self.recv.wait_for(1, path, "event")), 1)
        self.publish(ev2)
        got = self.recv.wait_for(2, path, "event")
        self.assertEqual(len(got), 2)
        self.assertIs(self.wait_disabled(sub["id"]).get("disabled"), True)
        time.sleep(QUIET)
        self.assertEqual([r.json()["id"] for r in self.recv.events(path)], [r.json()["id"] for r in got],
                         "after the 410 nothing more is delivered, pending retries included")

    def test_gone_disables_and_repost_enables(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(410))
        body = {"endPoint": self.recv.url(path), "resourceFilter": res}
        ev1 = event(resource=res)
        self.publish(ev1)
        self.assertEqual(len(self.recv.wait_for(1, path, "event")), 1)
        time.sleep(QUIET)
        self.assertEqual(len(self.recv.events(path)), 1, "a 410 is not retried: %r" % (self.recv.events(path),))
        g = self.wait_disabled(sub["id"])
        self.assertIs(g.get("disabled"), True, repr(g))
        lst = [s for s in self.srv.list_subscriptions(self.tok).json()["subscriptions"] if s["id"] == sub["id"]]
        self.assertEqual(len(lst), 1)
        self.assertIs(lst[0].get("disabled"), True)
        # later events are not delivered
        ev2 = event(resource=res)
        self.publish(ev2)
        time.sleep(QUIET)
        self.assertEqual([r.json()["id"] for r in self.recv.events(path)], [ev1["id"]])
        # posting the same subscription again: a new handshake, enabled again, delivering
        self.recv.handshake_then(path, OK)
        handshakes = len(self.recv.handshakes(path))
        r = self.create(body)
        self.assertIn(r.status, (200, 201), repr(r))
        self.assertEqual(r.json()["id"], sub["id"], "the same subscription")
        self.assertEqual(len(self.recv.wait_for(handshakes + 1, path, "handshake")), handshakes + 1,
                         "re-posting a disabled subscription runs the handshake again")
        doc = self.srv.wait_validated(sub["id"], self.tok)
        self.assertIs(doc.get("validated"), True)
        deadline = time.monotonic() + 5
        while "disabled" in doc and time.monotonic() < deadline:
            time.sleep(0.05)
            doc = self.srv.get_subscription(sub["id"], self.tok).json()
        self.assertNotIn("disabled", doc)
        ev3 = event(resource=res)
        self.publish(ev3)
        self.assertEqual(self.recv.wait_event_ids([ev3["id"]], path), set())

    def test_gone_disables_only_that_subscription(self):
        res = fresh_resource()
        gone, gone_path = self.subscribe(res, event_answer=Answer(410))
        ok, ok_path = self.subscribe(res)
        ev1 = event(resource=res)
        self.publish(ev1)
        self.assertEqual(self.recv.wait_event_ids([ev1["id"]], ok_path), set())
        self.assertEqual(len(self.recv.wait_for(1, gone_path, "event")), 1)
        ev2 = event(resource=res)
        self.publish(ev2)
        self.assertEqual(self.recv.wait_event_ids([ev2["id"]], ok_path), set())
        self.assertNotIn("disabled", self.srv.get_subscription(ok["id"], self.tok).json())
        self.assertIs(self.wait_disabled(gone["id"]).get("disabled"), True)
        self.assertEqual(len(self.recv.events(gone_path)), 1)


class MaxRetryAfterTest(ExtTestBase):
    """--max-retry-after caps how long a receiver's Retry-After may delay the next attempt."""

    CLASS_SERVER = False

    def test_retry_after_is_capped(self):
        self.srv = self.start_server(*self.server_args(self.RETRY_SCHEDULE), "--max-retry-after", "1s")
        res = fresh_resource()
        _, path = self.subscribe(res)
        self.recv.script(path, [Answer(429, headers={"Retry-After": "30"})], default=OK)
        ev = event(resource=res)
        self.publish(ev)
        reqs = self.recv.wait_for(2, path, "event", timeout=10)
        self.assertEqual(len(reqs), 2, "a 30 s Retry-After capped at 1 s: %r" % (reqs,))
        gap = reqs[1].t - reqs[0].t
        self.assertGreaterEqual(gap, 1.0 - TIMING_SLACK, "the cap is still a delay: gap %.3f" % gap)
        self.assertLess(gap, 10.0, "capped at 1 s, not 30 s: gap %.3f" % gap)

    def test_bad_value_stops_start_up(self):
        import subprocess
        from harness import binary
        r = subprocess.run([binary(), "serve", "--dev", "--max-retry-after", "soon"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--max-retry-after", r.stderr)


class RestartTest(ExtTestBase):
    """What the extension fields and states keep across a restart of the server (a server per test)."""

    CLASS_SERVER = False

    def test_pending_retry_after_restart_same_id_same_key_same_mode(self):
        srv = self.start_ext_server((1.0, 1.0, 1.0))
        secret, key = new_signing_secret(32)
        res = fresh_resource()
        sub, path = self.subscribe(res, signingSecret=secret, contentMode="binary")
        self.recv.script(path, [Answer(500)], default=OK)
        ev = event(resource=res, data={"k": 1})
        self.publish(ev)
        first = self.recv.wait_for(1, path, "event")
        self.assertEqual(len(first), 1)
        srv.restart(sigkill=True)
        got = self.recv.wait_for(2, path, "event", timeout=15)
        self.assertEqual(len(got), 2, "the pending retry is sent after the restart: %r" % (got,))
        for r in got:
            self.assertEqual(r.headers.get("ce-id"), ev["id"], "still binary mode")
            self.assertEqual(json.loads(r.body), {"k": 1})
            self.assertEqual(r.headers.get("webhook-signature"),
                             webhook_signature(key, r.headers.get("webhook-id"), r.headers.get("webhook-timestamp"),
                                               r.body), "still signed with the same key")
        self.assertEqual(got[0].headers.get("webhook-id"), got[1].headers.get("webhook-id"),
                         "a retry keeps its webhook-id, also after a restart")

    def test_disabled_survives_restart(self):
        srv = self.start_ext_server((1.0, 1.0, 1.0))
        res = fresh_resource()
        sub, path = self.subscribe(res, event_answer=Answer(410),
                                   filters=[{"exact": {"type": "keep"}}], contentMode="cloudevents")
        self.publish(event(resource=res, type="keep"))
        self.assertEqual(len(self.recv.wait_for(1, path, "event")), 1)
        self.assertIs(self.wait_disabled(sub["id"]).get("disabled"), True)
        srv.restart()
        doc = self.srv.get_subscription(sub["id"], self.tok).json()
        self.assertIs(doc.get("disabled"), True, repr(doc))
        self.assertEqual(doc.get("filters"), [{"exact": {"type": "keep"}}])
        self.assertEqual(doc.get("contentMode"), "cloudevents")
        self.publish(event(resource=res, type="keep"))
        time.sleep(QUIET)
        self.assertEqual(len(self.recv.events(path)), 1, "a disabled subscription stays disabled after a restart")


if __name__ == "__main__":
    unittest.main()
