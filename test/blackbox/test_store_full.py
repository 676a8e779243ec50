"""A full store (issue 7): with a tiny --max-store-bytes the LMDB map fills up. Then publishes get 507
with a problem body, polling and deliveries go on, nothing acknowledged is lost, and the server restarts
on the full store (and takes events again with a larger map)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PROBLEM_JSON, BBTestCase, event, fresh_resource, media_type  # noqa: E402
from receiver import Receiver  # noqa: E402


class StoreFullTest(BBTestCase):
    ARGS = ("--dev", "--auth", "none", "--validation-schedule", "100ms",
            "--retry-schedule", "100ms,100ms,100ms")

    def setUp(self):
        self.recv = Receiver()
        self.addCleanup(self.recv.close)

    def fill(self, srv, res, size=6000, limit=2000):
        """Publishes events of about size bytes until the store answers 507; returns (acked ids, the
        first 507 response)."""
        acked = []
        pad = "x" * size
        with srv.connection() as c:
            for i in range(limit):
                ev = event(resource=res, subject="/party/%d" % i, data={"pad": pad, "i": i})
                r = srv.publish(ev, conn=c)
                if r.status == 507:
                    return acked, r
                self.assertStatus(r, 200)
                acked.append(ev["id"])
        self.fail("no 507 after %d events of %d bytes with --max-store-bytes 1m" % (limit, size))

    def test_full_store(self):
        srv = self.start_server("--max-store-bytes", "1m", *self.ARGS)
        res = fresh_resource("full")
        path = self.recv.unique_path("full")
        r = srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res})
        self.assertStatus(r, 201)
        self.assertIs(srv.wait_validated(r.json()["id"])["validated"], True)

        acked, full = self.fill(srv, res)
        print("\nstore full after %d acknowledged events" % len(acked), file=sys.stderr)
        self.assertGreater(len(acked), 10)
        body = self.assertProblemJson(full, 507)
        self.assertEqual(body["status"], 507)
        self.assertEqual(body["title"], "Insufficient Storage")
        self.assertIn("full", body.get("detail", ""))
        self.assertIn("store is full", srv.stderr_text())

        # more publishes on new connections: each is stored (acknowledged) or refused with 507 (space
        # comes back as delivery records are removed, so some may fit)
        refused = 0
        for i in range(20):
            ev = event(resource=res, data={"pad": "y" * 6000})
            r = srv.request("POST", "/events/api/v1/events", ev,
                            headers={"Content-Type": "application/cloudevents+json"})
            if r.status == 200:
                acked.append(ev["id"])
                continue
            self.assertProblemJson(r, 507)
            self.assertEqual(media_type(r.headers.get("content-type")), PROBLEM_JSON)
            refused += 1
        self.assertGreater(refused, 10)
        # reads go on: every acknowledged event is there, in order
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        self.assertEqual([e["id"] for e in got], acked)
        self.assertEqual(srv.request("GET", "/health").status, 200)
        # deliveries go on: every acknowledged event reaches the receiver
        missing = self.recv.wait_event_ids(acked, path, timeout=30)
        self.assertEqual(missing, set(), "%d acknowledged events not delivered on a full store" % len(missing))

        # a restart on the full store works and loses nothing
        self.assertEqual(srv.stop(), 0)
        srv.start()
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        self.assertEqual([e["id"] for e in got], acked)
        ev = event(resource=res, data={"pad": "z" * 60000})
        r = srv.publish(ev)
        if r.status == 200:
            acked.append(ev["id"])
        else:
            self.assertProblemJson(r, 507)

        # kill -9 on the full store, then a larger map: publishing works again, nothing lost
        srv.kill9()
        srv.extra_args[srv.extra_args.index("1m")] = "4m"
        srv.start()
        ev = event(resource=res, data={"pad": "w" * 6000})
        self.assertStatus(srv.publish(ev), 200)
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        self.assertEqual([e["id"] for e in got], acked + [ev["id"]])
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=20), set())
        self.assertEqual(srv.stop(), 0)

    def test_full_store_refuses_subscriptions_cleanly(self):
        srv = self.start_server("--max-store-bytes", "1m", *self.ARGS)
        res = fresh_resource("full2")
        acked, _ = self.fill(srv, res, size=20000)
        # filling the last bytes with small events, so that even small writes fail
        acked_small, _ = self.fill(srv, res, size=100)
        path = self.recv.unique_path("late")
        r = srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res})
        print("\nsubscription on a full store: %d" % r.status, file=sys.stderr)
        # a subscription either fits or is refused with a clear 5xx; the server goes on
        self.assertIn(r.status, (201, 500, 507), repr(r))
        self.assertEqual(srv.request("GET", "/health").status, 200)
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        self.assertEqual([e["id"] for e in got], acked + acked_small)
        self.assertEqual(srv.stop(), 0)
        srv.start()
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        self.assertEqual([e["id"] for e in got], acked + acked_small)


if __name__ == "__main__":
    unittest.main()
