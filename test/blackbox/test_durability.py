"""Durability: an event answered 200 survives kill -9 (api.md §1 "Success"), clean shutdown keeps
everything, and the poll order is the order of the 200 answers."""

import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, fresh_resource  # noqa: E402

PUBLISHERS = 16
PER_PUBLISHER = 150
ROUNDS = 2


def publish_storm(srv, resource, stop_after_acks, per_publisher=PER_PUBLISHER, publishers=PUBLISHERS,
                  action=None, max_wait=20.0):
    """Runs `publishers` threads, each on its own keep-alive connection, publishing up to
    per_publisher events as fast as it can. When stop_after_acks answers have been 200 (or after
    max_wait seconds), runs action() while the publishers are still sending, then waits for them.
    Returns (acked events in answer order, number attempted, action's result)."""
    acked = []
    lock = threading.Lock()
    trigger = threading.Event()
    attempted = [0]

    def publisher():
        conn = srv.connection(timeout=20)
        try:
            for _ in range(per_publisher):
                ev = event(resource=resource, subject="/party/%d" % (len(acked) % 7))
                with lock:
                    attempted[0] += 1
                try:
                    r = conn.request("POST", "/events/api/v1/events", _body(ev),
                                     {"Content-Type": "application/cloudevents+json"}, retry=False)
                except OSError:
                    return  # server gone: the in-flight event was never acknowledged
                except Exception:
                    return
                if r.status == 200:
                    with lock:
                        acked.append(ev)
                        if len(acked) >= stop_after_acks:
                            trigger.set()
        finally:
            conn.close()

    threads = [threading.Thread(target=publisher, daemon=True) for _ in range(publishers)]
    for t in threads:
        t.start()
    trigger.wait(timeout=max_wait)
    result = action() if action else None
    for t in threads:
        t.join(timeout=60)
        if t.is_alive():
            raise AssertionError("a publisher thread hangs")
    with lock:
        return list(acked), attempted[0], result


def _body(ev):
    import json
    return json.dumps(ev)


class DurabilityTest(BBTestCase):
    def all_events(self, srv, resource):
        events, pages = srv.poll_all("resource=%s&after=0&size=1000" % resource)
        for p in pages:
            self.assertPollPage(p)
        return events

    def assertAllPresentOnce(self, stored, acked):
        ids = [e["id"] for e in stored]
        self.assertEqual(len(ids), len(set(ids)), "an event is stored more than once")
        by_id = {e["id"]: e for e in stored}
        missing = [e["id"] for e in acked if e["id"] not in by_id]
        self.assertEqual(missing, [], "%d of %d acknowledged events lost" % (len(missing), len(acked)))
        for e in acked:
            self.assertEqual(by_id[e["id"]], e)

    def test_kill9_loses_no_acknowledged_event(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        all_acked = []
        total = PUBLISHERS * PER_PUBLISHER
        for rnd in range(ROUNDS):
            acked, attempted, _ = publish_storm(srv, res, stop_after_acks=int(total * 0.4), action=srv.kill9)
            self.assertFalse(srv.running())
            self.assertGreater(len(acked), 0, "round %d: nothing acknowledged" % rnd)
            self.assertLess(len(acked), total,
                            "round %d: every publish finished before the kill; the kill was not mid-stream" % rnd)
            all_acked.extend(acked)
            srv.start()
            stored = self.all_events(srv, res)
            self.assertAllPresentOnce(stored, all_acked)
            # re-sending acknowledged events after the crash does not store them twice
            with srv.connection() as conn:
                for ev in acked[:50]:
                    self.assertStatus(srv.publish(ev, conn=conn), 200)
            self.assertEqual(self.all_events(srv, res), stored)
            # nothing stored that was never even sent
            self.assertLessEqual(len(stored), len(all_acked) + PUBLISHERS * (rnd + 1))
        # the server is fully usable after the crashes
        ev = event(resource=res)
        self.assertStatus(srv.publish(ev), 200)
        stored = self.all_events(srv, res)
        self.assertEqual(stored[-1], ev)
        self.assertEqual(srv.stop(), 0)

    def test_sigterm_under_load_keeps_acknowledged(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        codes = []

        def term():
            srv.proc.send_signal(signal.SIGTERM)
            codes.append(srv.proc.wait(timeout=15))

        acked, _, _ = publish_storm(srv, res, stop_after_acks=300, per_publisher=60, action=term)
        self.assertEqual(codes, [0])
        srv.start()
        self.assertAllPresentOnce(self.all_events(srv, res), acked)

    def test_clean_restart_keeps_everything_in_order(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        sent = []
        for i in range(40):
            ev = event(resource=res, subject="/party/%d" % i)
            if i % 3 == 0:
                ev["data"] = {"n": i}
            r = srv.publish(ev)
            self.assertStatus(r, 200)
            if "data" in ev:
                ev = dict(ev, datacontenttype="application/json")
            sent.append(ev)
        self.assertEqual(self.all_events(srv, res), sent)
        self.assertEqual(srv.restart(), 0)  # SIGTERM, exit 0, start on the same data dir
        self.assertEqual(self.all_events(srv, res), sent)
        # a second restart, through SIGINT, changes nothing either
        self.assertEqual(srv.signal(signal.SIGINT), 0)
        srv.start()
        self.assertEqual(self.all_events(srv, res), sent)
        # duplicates are still recognised after the restart
        for ev in sent[:10]:
            self.assertStatus(srv.publish(ev), 200)
        self.assertEqual(self.all_events(srv, res), sent)
        # a cursor taken before the restart still works
        r = srv.poll("resource=%s&after=%s" % (res, sent[29]["id"]))
        self.assertEqual(self.assertPollPage(r), sent[30:])

    def test_order_equals_answer_order(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        sent = []
        with srv.connection() as conn:
            for _ in range(60):
                ev = event(resource=res)
                self.assertStatus(srv.publish(ev, conn=conn), 200)
                sent.append(ev["id"])
        self.assertEqual([e["id"] for e in self.all_events(srv, res)], sent)
        # two interleaved clients, strictly alternating: still answer order
        more = []
        with srv.connection() as a, srv.connection() as b:
            for i in range(20):
                ev = event(resource=res)
                self.assertStatus(srv.publish(ev, conn=a if i % 2 else b), 200)
                more.append(ev["id"])
        self.assertEqual([e["id"] for e in self.all_events(srv, res)], sent + more)

    def test_restart_after_kill9_idle(self):
        # a kill -9 of an idle server (nothing in flight) must not corrupt the store
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        evs = [event(resource=res) for _ in range(10)]
        for ev in evs:
            self.assertStatus(srv.publish(ev), 200)
        time.sleep(0.1)
        srv.kill9()
        srv.start()
        self.assertEqual(self.all_events(srv, res), evs)


if __name__ == "__main__":
    unittest.main()
