"""Crash loops (issue 7): rounds of 16 concurrent publishers and kill -9, on one data directory. After
every restart each acknowledged event is stored exactly once (acknowledged <= stored <= attempted, no
duplicates), and the subscription's deliveries go on: every acknowledged event reaches the receiver at
least once across the rounds.

Two rounds kill in the middle of a commit through the test hook HENDELSE_TEST_COMMIT_DELAY_MS (see
server/commit.c): the committer sleeps after store_commit returned (the events are durable but their
publishers are not answered: they may appear, and do), or before it (nothing written: the publishers
were never answered). The counts of every round are printed (the README's Reliability table quotes
them)."""

import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, fresh_resource, wait_until  # noqa: E402
from receiver import Answer, Receiver  # noqa: E402

PUBLISHERS = 16
ROUNDS = [  # (name, commit delay in ms, where)
    ("kill -9 under load", 0, None),
    ("kill -9 under load", 0, None),
    ("kill -9 under load", 0, None),
    ("kill -9 inside a commit, after the LMDB commit, before the answers", 300, "after"),
    ("kill -9 inside a commit, before the LMDB commit", 300, "before"),
]


class CrashLoopTest(BBTestCase):
    def test_crash_rounds(self):
        recv = Receiver()
        self.addCleanup(recv.close)
        srv = self.start_server("--dev", "--auth", "none", "--validation-schedule", "100ms",
                                "--retry-schedule", "100ms,200ms,300ms,500ms,1s,1s,1s,1s")
        res = fresh_resource("crash")
        path = recv.unique_path("crash")
        # slow-ish answers keep deliveries pending when the process dies
        recv.handshake_then(path, Answer(200, delay=0.02))
        r = srv.create_subscription({"endPoint": recv.url(path), "resourceFilter": res})
        self.assertStatus(r, 201)
        self.assertIs(srv.wait_validated(r.json()["id"])["validated"], True)

        all_acked, all_attempted = [], set()
        rnd = random.Random(7)
        report = []
        for n, (name, delay_ms, where) in enumerate(ROUNDS, 1):
            if delay_ms:
                os.environ["HENDELSE_TEST_COMMIT_DELAY_MS"] = str(delay_ms)
                os.environ["HENDELSE_TEST_COMMIT_DELAY_AT"] = where
            try:
                srv.restart(sigkill=True)
            finally:
                os.environ.pop("HENDELSE_TEST_COMMIT_DELAY_MS", None)
                os.environ.pop("HENDELSE_TEST_COMMIT_DELAY_AT", None)
            acked, attempted = self.publish_and_kill(srv, res, n, min_acked=40 if delay_ms else 150,
                                                     extra_wait=rnd.uniform(0.05, 0.25))
            all_acked += acked
            all_attempted |= attempted
            srv.start()  # without the hook
            stored = self.stored_ids(srv, res)
            self.assertEqual(len(stored), len(set(stored)), "round %d: duplicates stored" % n)
            lost = set(all_acked) - set(stored)
            self.assertEqual(lost, set(), "round %d (%s): %d acknowledged events lost" % (n, name, len(lost)))
            invented = set(stored) - all_attempted
            self.assertEqual(invented, set(), "round %d: events stored that nobody sent" % n)
            # this round's events that are durable although their publishers got no answer
            unanswered = len((set(stored) & attempted) - set(acked))
            report.append((n, name, len(acked), len(set(stored)), unanswered))
            if where == "after":
                # killed while sleeping after durable commits: their publishers never got an answer
                self.assertGreater(unanswered, 0, "round %d: the kill missed the commit window" % n)
            srv.stop()

        srv.start()
        # retrying an acknowledged event after the crashes is a duplicate: still stored once
        with srv.connection() as c:
            for eid in all_acked[:5] + all_acked[-5:]:
                ev = event(resource=res, id=eid)
                self.assertEqual(srv.publish(ev, conn=c).status, 200)
        stored = self.stored_ids(srv, res)
        self.assertEqual(len(stored), len(set(stored)))
        self.assertTrue(set(all_acked) <= set(stored))
        # every acknowledged event reaches the receiver at least once across the rounds
        missing = recv.wait_event_ids(all_acked, path, timeout=40)
        self.assertEqual(missing, set(), "%d of %d acknowledged events never delivered"
                         % (len(missing), len(all_acked)))
        deliveries = len(recv.events(path))
        print("\ncrash rounds (%d publishers each):" % PUBLISHERS, file=sys.stderr)
        for n, name, a, s, u in report:
            print("  round %d, %s: acknowledged %d, durable but unanswered %d (stored in all %d), lost 0"
                  % (n, name, a, u, s), file=sys.stderr)
        print("  total: acknowledged %d, lost 0, duplicates stored 0; delivered %d of %d "
              "(%d deliveries, duplicates allowed)" % (len(all_acked), len(all_acked) - len(missing),
                                                       len(all_acked), deliveries), file=sys.stderr)

    def stored_ids(self, srv, res):
        got, _ = srv.poll_all("resource=%s&after=0&size=1000" % res)
        return [e["id"] for e in got]

    def publish_and_kill(self, srv, res, round_no, min_acked, extra_wait):
        acked, attempted = [], set()
        lock = threading.Lock()
        stop = threading.Event()

        def publisher(k):
            conn = srv.connection(timeout=10)
            i = 0
            try:
                while not stop.is_set():
                    ev = event(resource=res, subject="/party/%d" % k, data={"round": round_no, "i": i})
                    i += 1
                    with lock:
                        attempted.add(ev["id"])
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

        threads = [threading.Thread(target=publisher, args=(k,)) for k in range(PUBLISHERS)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= min_acked, timeout=20)
        time.sleep(extra_wait)
        srv.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        with lock:
            self.assertGreaterEqual(len(acked), min_acked)
            return list(acked), set(attempted)


if __name__ == "__main__":
    unittest.main()
