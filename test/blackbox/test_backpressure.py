"""Back-pressure (webhook.h, webhook_opts_t): a slow receiver with one connection and a long queue of
deliveries behind it gets every event exactly once, each on attempt 1. Waiting for a free connection
is not a failed attempt: no retry is recorded, nothing is delayed by the retry schedule (10 s here,
longer than the whole test may take), and the audit trail shows one successful attempt per event."""

import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, bearer, event,  # noqa: E402
                     fresh_resource, make_token, new_secret_file, publish_many)
from receiver import Answer, Receiver  # noqa: E402

N = 300
SCOPE_ADMIN = "altinn:events.admin"


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class BackpressureTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-bp-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
            "--webhook-connections", "1", "--retry-schedule", "10s",
            "--validation-schedule", "100ms,100ms")
        cls.tok = make_token(cls.secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd")
        cls.admin = make_token(cls.secret, scope=SCOPE_ADMIN, org="digdir")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def test_slow_receiver_long_queue(self):
        res = fresh_resource("bp")
        path = self.recv.unique_path("bp")
        self.recv.set_default(Answer(200, delay=0.004), path=path)
        r = self.srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertEqual(r.status, 201, repr(r))
        sub_id = r.json()["id"]
        got = self.srv.wait_validated(sub_id, self.tok)
        self.assertTrue(got and got["validated"], got)

        evs = [event(resource=res) for _ in range(N)]
        t0 = time.time()
        self.assertEqual(set(publish_many(self.srv, evs, self.tok)), {200})
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path, timeout=9), set(),
                         "every event delivered before the 10 s retry delay could have passed")
        self.assertLess(time.time() - t0, 10)
        time.sleep(0.3)  # nothing more may arrive
        ids = [q.json()["id"] for q in self.recv.events(path)]
        self.assertEqual(len(ids), N, "exactly once each")
        self.assertEqual(set(ids), {e["id"] for e in evs})

        text = self.srv.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(text, "hendelse_retries_pending"), 0)
        self.assertIn(metric(text, 'hendelse_deliveries_total{outcome="failure"}'), (None, 0))

        attempts = []
        after = 0
        for _ in range(100):
            r = self.srv.request("GET", "/events/api/v1/audit?subscriptionId=%d&size=1000&after=%d"
                                 % (sub_id, after), None, bearer(self.admin))
            self.assertEqual(r.status, 200, repr(r))
            page = r.json()
            attempts += [(x["eventId"], x["attempt"], x["status"]) for x in page if x["kind"] == "delivery"]
            if len(attempts) >= N or not page:
                break
            after = page[-1]["id"]
        self.assertEqual(len(attempts), N, "one audit record per event")
        self.assertEqual({(a, s) for _, a, s in attempts}, {(1, 200)}, "every one attempt 1, 200")
        self.assertEqual({e for e, _, _ in attempts}, {e["id"] for e in evs})


if __name__ == "__main__":
    unittest.main()
