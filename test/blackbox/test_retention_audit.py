"""Retention (--retention DUR) and the audit trail (GET /events/api/v1/audit).

Audit: a publish (stored, then the same again as a duplicate), a subscription's creation, validation
and deletion, a delivery that succeeds and one that fails and is retried each produce the right
records in order; `next` paging; the eventId and subscriptionId filters; 401 without a token, 403
without altinn:events.admin, 400 for bad parameters, 405 for other methods.

Retention: with `--retention 2s` events disappear from polls after the window while newer ones stay,
the dead letters and audit records of pruned events go, `after` with a pruned id starts from the
oldest kept event, sequence numbers are not reused, and publishing goes on (every publish answered
200) while pruning runs."""

import json
import os
import re
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, JSON_UTF8, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, Server, bearer,  # noqa: E402
                     event, fresh_resource, make_token, new_secret_file, run_cli, wait_until)
from receiver import Answer, Receiver  # noqa: E402

AUDIT_PATH = "/events/api/v1/audit"
SCOPE_ADMIN = "altinn:events.admin"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


class AuditMixin:
    def audit(self, query="", tok=None):
        r = self.srv.request("GET", AUDIT_PATH + ("?" + query if query else ""), None,
                             bearer(tok or self.admin))
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.headers.get("content-type"), JSON_UTF8)
        body = r.json()
        self.assertIsInstance(body, list)
        return r, body

    def audit_all(self, query, tok=None, max_pages=1000):
        """Follows `next` from the first page until a page without one; returns (records, pages)."""
        r, page = self.audit(query, tok)
        records, pages = list(page), [page]
        for _ in range(max_pages):
            nxt = r.headers.get("next")
            if nxt is None:
                return records, pages
            path = self.srv.path_of(nxt)
            self.assertTrue(path.startswith(AUDIT_PATH + "?after="), nxt)
            r = self.srv.request("GET", path, None, bearer(tok or self.admin))
            self.assertEqual(r.status, 200, repr(r))
            page = r.json()
            records.extend(page)
            pages.append(page)
        self.fail("more than %d pages" % max_pages)

    def last_id(self):
        recs, _ = self.audit_all("size=1000")
        return recs[-1]["id"] if recs else 0


class AuditTest(AuditMixin, BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-audit-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
            "--retry-schedule", "50ms", "--validation-schedule", "100ms,100ms")
        cls.tok = make_token(cls.secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd")
        cls.admin = make_token(cls.secret, scope=SCOPE_ADMIN, org="digdir")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def publish(self, ev):
        r = self.srv.publish(ev, self.tok)
        self.assertEqual(r.status, 200, repr(r))

    # ---- access ----

    def test_401_without_token(self):
        r = self.srv.request("GET", AUDIT_PATH)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        bad = make_token("not the secret", scope=SCOPE_ADMIN)
        self.assertEqual(self.srv.request("GET", AUDIT_PATH, None, bearer(bad)).status, 401)

    def test_403_without_admin_scope(self):
        r = self.srv.request("GET", AUDIT_PATH, None, bearer(self.tok))
        self.assertEqual(r.status, 403)
        other = make_token(self.secret, scope="altinn:events.publish.admin altinn:serviceowner")
        self.assertEqual(self.srv.request("GET", AUDIT_PATH, None, bearer(other)).status, 403)

    def test_bad_parameters_and_methods(self):
        for q, key in (("after=abc", "after"), ("after=-1", "after"), ("size=x", "size"),
                       ("subscriptionId=one", "subscriptionId")):
            r = self.srv.request("GET", AUDIT_PATH + "?" + q, None, bearer(self.admin))
            self.assertEqual(r.status, 400, q)
            self.assertIn(key, r.json().get("errors", {}), repr(r))
        r = self.srv.request("POST", AUDIT_PATH, "{}", bearer(self.admin))
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers.get("allow"), "GET")

    # ---- records ----

    def test_publish_records(self):
        res = fresh_resource("audit")
        ev = event(resource=res)
        before = self.last_id()
        self.publish(ev)
        self.publish(ev)  # a duplicate: recorded with the stored event's sequence
        _, recs = self.audit("eventId=" + urllib.parse.quote(ev["id"]))
        self.assertEqual(len(recs), 2, recs)
        first, dup = recs
        for rec in recs:
            self.assertGreater(rec["id"], before)
            self.assertEqual(rec["kind"], "publish")
            self.assertEqual(rec["who"], "/org/ttd")
            self.assertEqual(rec["eventId"], ev["id"])
            self.assertEqual(rec["source"], ev["source"])
            self.assertEqual(rec["resource"], res)
            self.assertRegex(rec["time"], TIME_RE)
            self.assertIsInstance(rec["sequence"], int)
        self.assertLess(first["id"], dup["id"])
        self.assertEqual(first["outcome"], "stored")
        self.assertEqual(dup["outcome"], "duplicate")
        self.assertEqual(first["sequence"], dup["sequence"])

    def test_batch_publish_records_in_order(self):
        res = fresh_resource("audit")
        evs = [event(resource=res) for _ in range(3)]
        r = self.srv.publish(json.dumps(evs), self.tok, content_type="application/cloudevents-batch+json")
        self.assertEqual(r.status, 200, repr(r))
        recs, _ = self.audit_all("size=1000")
        mine = [x for x in recs if x.get("resource") == res]
        self.assertEqual([x["eventId"] for x in mine], [e["id"] for e in evs])
        self.assertEqual([x["sequence"] for x in mine], sorted(x["sequence"] for x in mine))

    def test_subscription_and_deliveries(self):
        res = fresh_resource("audit")
        path = self.recv.unique_path("audit")
        # the first event is answered 200; the second 500, then 200 on its retry
        self.recv.script(path, [Answer(200), Answer(200), Answer(500), Answer(200)])
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertEqual(r.status, 201, repr(r))
        sub_id = r.json()["id"]
        got = self.srv.wait_validated(sub_id, self.tok)
        self.assertTrue(got and got["validated"], got)
        e1, e2 = event(resource=res), event(resource=res)
        self.publish(e1)
        self.assertEqual(self.recv.wait_event_ids([e1["id"]], path), set())
        self.publish(e2)
        self.assertEqual(len(self.recv.wait_for(3, path, "event")), 3)

        def deliveries():
            _, recs = self.audit("subscriptionId=%d&size=1000" % sub_id)
            return recs if len([x for x in recs if x["kind"] == "delivery"]) >= 3 else None
        self.assertTrue(wait_until(deliveries, timeout=10), "three delivery records")
        r = self.srv.delete_subscription(sub_id, self.tok)
        self.assertEqual(r.status, 200)

        _, recs = self.audit("subscriptionId=%d&size=1000" % sub_id)
        summary = [(x["kind"], x.get("action") or x.get("eventId"), x.get("attempt"), x.get("status"))
                   for x in recs]
        self.assertEqual(summary, [
            ("subscription", "created", None, None),
            ("subscription", "validated", None, None),
            ("delivery", e1["id"], 1, 200),
            ("delivery", e2["id"], 1, 500),
            ("delivery", e2["id"], 2, 200),
            ("subscription", "deleted", None, None),
        ])
        ids = [x["id"] for x in recs]
        self.assertEqual(ids, sorted(ids))
        created, validated, d1, d2, d3, deleted = recs
        self.assertEqual(created["who"], "/org/ttd")
        self.assertEqual(deleted["who"], "/org/ttd")
        self.assertNotIn("who", validated)  # the server itself
        for d in (d1, d2, d3):
            self.assertEqual(d["subscriptionId"], sub_id)
            self.assertEqual(d["resource"], res)
            self.assertIsInstance(d["durationMs"], (int, float))
            self.assertGreaterEqual(d["durationMs"], 0)
            self.assertIsInstance(d["sequence"], int)
        self.assertNotIn("error", d1)
        self.assertEqual(d2["error"], "HTTP 500")
        self.assertEqual(d2["sequence"], d3["sequence"])
        self.assertLess(d1["sequence"], d2["sequence"])

        # eventId filter: the publish and the two attempts of e2
        _, recs = self.audit("eventId=" + urllib.parse.quote(e2["id"]))
        self.assertEqual([(x["kind"], x.get("attempt")) for x in recs],
                         [("publish", None), ("delivery", 1), ("delivery", 2)])
        # both filters
        _, recs = self.audit("eventId=%s&subscriptionId=%d" % (urllib.parse.quote(e1["id"]), sub_id))
        self.assertEqual([(x["kind"], x["eventId"]) for x in recs], [("delivery", e1["id"])])
        # another subscription's id: nothing
        _, recs = self.audit("subscriptionId=%d" % (sub_id + 100000))
        self.assertEqual(recs, [])

    def test_connection_failure_recorded(self):
        res = fresh_resource("audit")
        dead = Receiver()
        path = dead.unique_path("gone")
        r = self.srv.create_subscription({"endPoint": dead.url(path), "resourceFilter": res}, self.tok)
        self.assertEqual(r.status, 201)
        sub_id = r.json()["id"]
        self.assertTrue(self.srv.wait_validated(sub_id, self.tok)["validated"])
        dead.close()  # nothing listens there any more: attempts fail without a status
        ev = event(resource=res)
        self.publish(ev)

        def two():
            _, recs = self.audit("subscriptionId=%d&eventId=%s" % (sub_id, ev["id"]))
            return recs if len(recs) >= 2 else None
        recs = wait_until(two, timeout=10)
        self.assertTrue(recs, "both attempts recorded")
        self.assertEqual([x["attempt"] for x in recs], [1, 2])
        for x in recs:
            self.assertEqual(x["status"], 0)
            self.assertTrue(x.get("error"), x)
        self.assertEqual(self.srv.delete_subscription(sub_id, self.tok).status, 200)

    def test_gone_disables_after_the_attempt(self):
        res = fresh_resource("audit")
        path = self.recv.unique_path("gone")
        self.recv.script(path, [Answer(200), Answer(410)])
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertEqual(r.status, 201)
        sub_id = r.json()["id"]
        self.assertTrue(self.srv.wait_validated(sub_id, self.tok)["validated"])
        self.publish(event(resource=res))

        def disabled():
            _, recs = self.audit("subscriptionId=%d" % sub_id)
            return recs if recs and recs[-1].get("action") == "disabled" else None
        recs = wait_until(disabled, timeout=10)
        self.assertTrue(recs, "a disabled record")
        self.assertEqual([(x["kind"], x.get("action"), x.get("status")) for x in recs], [
            ("subscription", "created", None),
            ("subscription", "validated", None),
            ("delivery", None, 410),
            ("subscription", "disabled", None),
        ])
        self.assertNotIn("who", recs[-1])

    def test_paging(self):
        res = fresh_resource("audit")
        start = self.last_id()
        evs = [event(resource=res) for _ in range(7)]
        for ev in evs:
            self.publish(ev)
        recs, pages = self.audit_all("after=%d&size=3" % start)
        mine = [x for x in recs if x.get("resource") == res and x["kind"] == "publish"]
        self.assertEqual([x["eventId"] for x in mine], [e["id"] for e in evs])
        ids = [x["id"] for x in recs]
        self.assertEqual(ids, sorted(set(ids)), "in order, no repeats")
        self.assertGreater(ids[0], start)
        self.assertTrue(all(len(p) <= 3 for p in pages))
        self.assertGreaterEqual(len(pages), 3)
        # the link names after, size and the filters
        r, page = self.audit("after=%d&size=2&eventId=%s" % (start, evs[0]["id"]))
        self.assertEqual(len(page), 1)
        nxt = r.headers.get("next")
        self.assertEqual(nxt, "%s%s?after=%d&size=2&eventId=%s" % (self.srv.base_url, AUDIT_PATH,
                                                                   page[0]["id"], evs[0]["id"]))
        r, page = self.audit(self.srv.path_of(nxt)[len(AUDIT_PATH) + 1:])
        self.assertEqual(page, [])
        self.assertIsNone(r.headers.get("next"), "an empty last page has no next")
        # size: default 50, capped at 1000, <= 0 means the default
        r, page = self.audit("after=0&size=0")
        self.assertLessEqual(len(page), 50)
        r, page = self.audit("after=%d&size=1" % start)
        self.assertEqual(len(page), 1)
        self.assertEqual(page[0]["id"], start + 1)


class RetentionTest(AuditMixin, BBTestCase):
    RETENTION = 2.0

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-ret-")
        self.addCleanup(self.tmp.cleanup)
        self.secret_file, self.secret = new_secret_file(self.tmp.name)
        self.recv = Receiver()
        self.addCleanup(self.recv.close)
        self.srv = self.start_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", self.secret_file,
            "--retry-schedule", "20ms", "--validation-schedule", "100ms,100ms",
            "--retention", "2s")
        self.tok = make_token(self.secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd")
        self.admin = make_token(self.secret, scope=SCOPE_ADMIN, org="digdir")

    def poll_ids(self, res, after="0"):
        r = self.srv.poll("resource=%s&after=%s&size=1000" % (res, after), self.tok)
        self.assertEqual(r.status, 200, repr(r))
        return [e["id"] for e in r.json()]

    def test_old_events_pruned_new_kept(self):
        res = fresh_resource("ret")
        path = self.recv.unique_path("ret")
        self.recv.handshake_then(path, Answer(500))  # every delivery fails: dead letters
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertEqual(r.status, 201)
        sub_id = r.json()["id"]
        self.assertTrue(self.srv.wait_validated(sub_id, self.tok)["validated"])

        old = [event(resource=res) for _ in range(3)]
        for ev in old:
            self.assertEqual(self.srv.publish(ev, self.tok).status, 200)
        self.assertEqual(self.poll_ids(res), [e["id"] for e in old])
        dl = wait_until(lambda: (lambda r: r.json() if r.status == 200 and len(r.json()) >= 3 else None)(
            self.srv.deadletters(sub_id, self.tok)), timeout=10)
        self.assertTrue(dl, "dead letters of the old events")
        old_seqs = {d["sequence"] for d in dl}
        _, recs = self.audit("eventId=" + old[0]["id"])
        self.assertGreaterEqual(len(recs), 2, recs)  # its publish and its delivery attempts

        # keep publishing (another resource, and res) while the old ones age out
        stop = threading.Event()
        statuses, newer = [], []
        other = fresh_resource("ret-other")

        def publisher():
            conn = self.srv.connection()
            try:
                while not stop.is_set():
                    ev = event(resource=other)
                    statuses.append(self.srv.publish(ev, self.tok, conn=conn).status)
                    time.sleep(0.05)
            finally:
                conn.close()
        t = threading.Thread(target=publisher, daemon=True)
        t.start()
        try:
            def old_gone():
                return not (set(self.poll_ids(res)) & {e["id"] for e in old})
            self.assertTrue(wait_until(old_gone, timeout=self.RETENTION + 5, interval=0.1),
                            "old events still polled after the window")
            fresh = event(resource=res)
            self.assertEqual(self.srv.publish(fresh, self.tok).status, 200)
            self.assertEqual(self.poll_ids(res), [fresh["id"]], "the new event stays")
            newer.append(fresh)
        finally:
            stop.set()
            t.join(10)
        self.assertGreater(len(statuses), 10)
        self.assertEqual(set(statuses), {200}, "every publish answered 200 while pruning ran")

        # `after` with a pruned id: from the oldest kept event
        self.assertEqual(self.poll_ids(res, after=old[-1]["id"]), [fresh["id"]])

        # dead letters of pruned events go (those of the new event may come)
        def old_dead_gone():
            r = self.srv.deadletters(sub_id, self.tok)
            return r.status == 200 and not ({d["sequence"] for d in r.json()} & old_seqs)
        self.assertTrue(wait_until(old_dead_gone, timeout=5), "dead letters of pruned events remain")

        # audit records of pruned events go; sequence numbers are not reused
        _, recs = self.audit("eventId=" + old[0]["id"])
        self.assertEqual(recs, [])
        _, recs = self.audit("eventId=" + fresh["id"])
        self.assertEqual(recs[0]["kind"], "publish")
        self.assertGreater(recs[0]["sequence"], max(old_seqs))
        # what is left of the trail is recent: at most the window plus one pass old
        recs, _ = self.audit_all("size=1000")
        self.assertTrue(recs)
        self.assertGreater(recs[0]["id"], 1)

    def test_restart_keeps_pruning_and_sequences(self):
        res = fresh_resource("ret")
        evs = [event(resource=res) for _ in range(2)]
        for ev in evs:
            self.assertEqual(self.srv.publish(ev, self.tok).status, 200)
        _, recs = self.audit("eventId=" + evs[-1]["id"])
        last_seq = recs[0]["sequence"]
        self.srv.restart()
        self.assertTrue(wait_until(lambda: self.poll_ids(res) == [], timeout=self.RETENTION + 5,
                                   interval=0.1), "pruned after a restart too")
        ev = event(resource=res)
        self.assertEqual(self.srv.publish(ev, self.tok).status, 200)
        _, recs = self.audit("eventId=" + ev["id"])
        self.assertGreater(recs[0]["sequence"], last_seq)


class RetentionOptionTest(BBTestCase):
    def test_zero_keeps_everything_and_bad_values(self):
        srv = self.start_server("--dev", "--auth", "none", "--retention", "0")
        res = fresh_resource("keep")
        ev = event(resource=res)
        self.assertEqual(srv.publish(ev).status, 200)
        time.sleep(1.5)
        r = srv.poll("resource=%s&after=0" % res)
        self.assertEqual([e["id"] for e in r.json()], [ev["id"]])
        for bad in ("soon", "-1s", "5x"):
            code, _, err = run_cli("serve", "--dev", "--listen", "127.0.0.1:0", "--retention", bad)
            self.assertEqual(code, 2, bad)
            self.assertIn("retention", err)


if __name__ == "__main__":
    unittest.main()
