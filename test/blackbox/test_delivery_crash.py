"""Crash safety of delivery (api.md §5 "guarantees", architecture.md "The delivery path"): kill -9 right
after publishes were answered 200, or in the middle of a retry schedule, and every delivery still
arrives after a restart on the same data directory (duplicates allowed, losses not). Subscriptions,
their validated flag and dead letters survive kill -9 too."""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, fresh_resource, wait_until  # noqa: E402
from receiver import OK, Answer, Receiver  # noqa: E402

SCHEDULE = ",".join(["300ms"] * 8)   # 9 attempts over 2.4 s at least


class CrashTest(BBTestCase):
    ARGS = ("--dev", "--auth", "none", "--retry-schedule", SCHEDULE, "--validation-schedule", "100ms")

    def setUp(self):
        self.recv = Receiver()
        self.addCleanup(self.recv.close)
        self.srv = self.start_server(*self.ARGS)

    def subscribe(self, resource, event_answer=OK):
        path = self.recv.unique_path("crash")
        self.recv.handshake_then(path, event_answer)
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": resource})
        self.assertStatus(r, 201)
        sub = r.json()
        self.assertIs(self.srv.wait_validated(sub["id"], timeout=10)["validated"], True)
        return sub, path

    def test_kill9_right_after_publish(self):
        res = fresh_resource()
        # slow answers keep many deliveries in flight or queued when the process dies
        sub, path = self.subscribe(res, Answer(200, delay=0.2))
        _, path2 = self.subscribe(res, Answer(200, delay=0.2))
        evs = [event(resource=res, subject="/party/%d" % i) for i in range(30)]
        conn = self.srv.connection()
        try:
            for ev in evs:
                self.assertStatus(self.srv.publish(ev, conn=conn), 200)
        finally:
            conn.close()
        self.srv.kill9()
        self.recv.handshake_then(path, OK)
        self.recv.handshake_then(path2, OK)
        self.srv.start()
        ids = [e["id"] for e in evs]
        for p in (path, path2):
            missing = self.recv.wait_event_ids(ids, p, timeout=20)
            self.assertEqual(missing, set(), "%d of %d acknowledged events never reached %s after kill -9"
                             % (len(missing), len(ids), p))
        # everything delivered matches what was published (duplicates allowed)
        stored = {e["id"]: e for e in self.srv.poll("resource=%s&after=0&size=1000" % res).json()}
        for r in self.recv.events(path) + self.recv.events(path2):
            doc = r.json()
            self.assertEqual(doc, stored[doc["id"]])
        g = self.srv.get_subscription(sub["id"])
        self.assertStatus(g, 200)
        self.assertIs(g.json()["validated"], True)

    def test_kill9_immediately_after_single_publish(self):
        # the tightest window: the process dies the moment the 200 arrives, repeated a few times
        res = fresh_resource()
        _, path = self.subscribe(res)
        sent = []
        for _ in range(3):
            ev = event(resource=res)
            self.assertStatus(self.srv.publish(ev), 200)
            self.srv.kill9()
            sent.append(ev["id"])
            self.srv.start()
        self.assertEqual(self.recv.wait_event_ids(sent, path, timeout=20), set())

    def test_kill9_during_concurrent_publishing(self):
        # 4 publishers on keep-alive connections; kill -9 while they are sending: every event that was
        # answered 200 reaches the subscriber after the restart
        res = fresh_resource()
        _, path = self.subscribe(res)
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def publisher():
            conn = self.srv.connection(timeout=10)
            try:
                while not stop.is_set():
                    ev = event(resource=res)
                    try:
                        r = conn.request("POST", "/events/api/v1/events", json.dumps(ev),
                                         {"Content-Type": "application/cloudevents+json"}, retry=False)
                    except Exception:
                        return
                    if r.status == 200:
                        with lock:
                            acked.append(ev["id"])
            finally:
                conn.close()

        threads = [threading.Thread(target=publisher) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 80, timeout=20)
        self.srv.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        with lock:
            ids = list(acked)
        self.assertGreaterEqual(len(ids), 80)
        self.srv.start()
        missing = self.recv.wait_event_ids(ids, path, timeout=30)
        self.assertEqual(missing, set(), "%d of %d acknowledged events never delivered after kill -9"
                         % (len(missing), len(ids)))

    def test_kill9_with_many_pending_retries(self):
        res = fresh_resource()
        _, path = self.subscribe(res, Answer(500))
        evs = [event(resource=res) for _ in range(15)]
        for ev in evs:
            self.assertStatus(self.srv.publish(ev), 200)
        ids = [e["id"] for e in evs]
        # every event has failed at least once
        wait_until(lambda: not (set(ids) - {r.json()["id"] for r in self.recv.events(path)}), timeout=10)
        self.srv.kill9()
        self.recv.handshake_then(path, OK)
        self.srv.start()
        ok_ids = lambda: {r.json()["id"] for r in self.recv.events(path) if r.answer.status == 200}  # noqa: E731
        wait_until(lambda: set(ids) <= ok_ids(), timeout=20)
        self.assertEqual(set(ids) - ok_ids(), set(), "pending retries lost in the crash")

    def test_kill9_right_after_create(self):
        res = fresh_resource()
        path = self.recv.unique_path("crash")
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res})
        self.assertStatus(r, 201)
        self.srv.kill9()
        self.srv.start()
        g = self.srv.get_subscription(r.json()["id"])
        self.assertStatus(g, 200)
        got = g.json()
        self.assertEqual({k: v for k, v in got.items() if k != "validated"},
                         {k: v for k, v in r.json().items() if k != "validated"})

    def test_kill9_mid_retry(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, Answer(500))
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev), 200)
        reqs = self.recv.wait_for(2, path, "event", timeout=10)
        self.assertEqual(len(reqs), 2, "the first attempt and one retry should have failed by now")
        self.srv.kill9()
        self.assertLess(len(self.recv.events(path)), 9, "the schedule must still be running at the kill")
        self.recv.handshake_then(path, OK)
        self.srv.start()
        got = self.recv.wait_for(1, path, "event", timeout=20, pred=lambda r: r.answer.status == 200)
        self.assertEqual(len(got), 1, "the pending retry was lost in the crash: %r" % (self.recv.events(path),))
        self.assertEqual(got[0].json()["id"], ev["id"])
        time.sleep(1.0)
        self.assertEqual(self.srv.deadletters(sub["id"]).json(), [])

    def test_sigterm_mid_retry(self):
        res = fresh_resource()
        sub, path = self.subscribe(res, Answer(503))
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev), 200)
        self.assertEqual(len(self.recv.wait_for(2, path, "event", timeout=10)), 2)
        self.assertEqual(self.srv.stop(), 0)
        self.recv.handshake_then(path, OK)
        self.srv.start()
        got = self.recv.wait_for(1, path, "event", timeout=20, pred=lambda r: r.answer.status == 200)
        self.assertEqual(len(got), 1, "the pending retry did not survive a clean restart")
        self.assertEqual(got[0].json()["id"], ev["id"])

    def test_retries_continue_after_kill9_and_dead_letter(self):
        # the receiver keeps failing: after the restart the schedule continues and still ends in one
        # dead letter (attempts counted across the restart are at least the 9 of the schedule when no
        # attempt was repeated; a crash may repeat one, so only at least 9 is required)
        res = fresh_resource()
        sub, path = self.subscribe(res, Answer(500))
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev), 200)
        self.assertEqual(len(self.recv.wait_for(3, path, "event", timeout=10)), 3)
        self.srv.kill9()
        self.srv.start()
        dls = wait_until(lambda: self.srv.deadletters(sub["id"]).json(), timeout=20)
        self.assertTrue(dls, "no dead letter after the schedule ran out across a restart")
        self.assertEqual(len(dls), 1)
        self.assertEqual(dls[0]["eventId"], ev["id"])
        self.assertGreaterEqual(len(self.recv.events(path)), 9)
        # dead letters survive kill -9 too, and redeliver works after it
        self.srv.kill9()
        self.srv.start()
        dls2 = self.srv.deadletters(sub["id"]).json()
        self.assertEqual(dls2, dls)
        self.recv.handshake_then(path, OK)
        r = self.srv.redeliver(sub["id"])
        self.assertStatus(r, 202)
        self.assertEqual(r.json(), {"requeued": 1})
        got = self.recv.wait_for(1, path, "event", timeout=10, pred=lambda q: q.answer.status == 200)
        self.assertEqual(len(got), 1)

    def test_subscriptions_survive_kill9(self):
        res = fresh_resource()
        keep, kpath = self.subscribe(res)
        gone, gpath = self.subscribe(res)
        pending = self.srv.create_subscription({"endPoint": "http://127.0.0.1:9/none", "resourceFilter": res})
        self.assertStatus(pending, 201)
        self.assertStatus(self.srv.delete_subscription(gone["id"]), 200)
        before = self.srv.get_subscription(keep["id"]).json()
        self.srv.kill9()
        self.srv.start()
        self.assertEqual(self.srv.get_subscription(keep["id"]).json(), before)
        self.assertStatus(self.srv.get_subscription(gone["id"]), 404)
        self.assertIs(self.srv.get_subscription(pending.json()["id"]).json()["validated"], False)
        ids = [s["id"] for s in self.srv.list_subscriptions().json()["subscriptions"]]
        self.assertIn(keep["id"], ids)
        self.assertNotIn(gone["id"], ids)
        # ids are not reused after a crash
        r = self.srv.create_subscription({"endPoint": self.recv.url("/new"), "resourceFilter": fresh_resource()})
        self.assertStatus(r, 201)
        self.assertGreater(r.json()["id"], pending.json()["id"])
        # the index was rebuilt: the kept subscription gets the next event, the deleted one does not
        ev = event(resource=res)
        self.assertStatus(self.srv.publish(ev), 200)
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], kpath, timeout=10), set())
        time.sleep(0.5)
        self.assertEqual(self.recv.events(gpath), [])


if __name__ == "__main__":
    unittest.main()
