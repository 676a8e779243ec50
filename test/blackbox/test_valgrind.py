"""The real binary under valgrind's memcheck (issue 7): a publish / deliver / poll / shutdown cycle
shows no memory errors and no definitely or indirectly lost bytes, and the process exits 0 on
SIGTERM. Skipped when valgrind is not installed, and for a sanitizer build (valgrind cannot run one)."""

import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BBTestCase, Server, binary, event, fresh_resource  # noqa: E402
from receiver import Answer, Receiver  # noqa: E402

VALGRIND = shutil.which("valgrind")


def sanitizer_build():
    try:
        with open(binary(), "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"__ubsan_handle" in data
    except OSError:
        return False


class ValgrindServer(Server):
    def __init__(self, log_path, *args, **kw):
        self.log_path = log_path
        super().__init__(*args, **kw)

    def argv(self):
        return ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                "--log-file=" + self.log_path] + super().argv()


@unittest.skipIf(not VALGRIND, "valgrind is not installed (apt-get install valgrind; .ci/deps has it)")
@unittest.skipIf(VALGRIND and sanitizer_build(), "a sanitizer build does not run under valgrind")
class ValgrindTest(BBTestCase):
    def test_publish_deliver_shutdown_no_leaks(self):
        harness.READY_TIMEOUT = 60.0  # startup under memcheck is slow
        recv = Receiver()
        self.addCleanup(recv.close)
        log = os.path.join(self.enterContext_tmp(), "memcheck.log")
        srv = ValgrindServer(log, "--dev", "--auth", "none", "--validation-schedule", "200ms",
                             "--retry-schedule", "100ms,100ms")
        self.addCleanup(srv.cleanup)
        t0 = time.monotonic()
        res = fresh_resource("vg")
        path = recv.unique_path("vg")
        bad = recv.unique_path("vgbad")
        recv.handshake_then(bad, Answer(500))  # a failing endpoint: retries, then a dead letter
        sids = []
        for p in (path, bad):
            r = srv.create_subscription({"endPoint": recv.url(p), "resourceFilter": res})
            self.assertStatus(r, 201)
            sids.append(r.json()["id"])
            self.assertIs(srv.wait_validated(sids[-1], timeout=30)["validated"], True)
        evs = [event(resource=res, subject="/party/%d" % i, data={"i": i}) for i in range(10)]
        with srv.connection() as c:
            for ev in evs:
                self.assertStatus(srv.publish(ev, conn=c), 200)
            self.assertStatus(srv.publish(evs[0], conn=c), 200)  # a duplicate
            self.assertStatus(srv.publish(b"{not json", conn=c), 400)
        batch = [event(resource=res) for _ in range(3)]
        r = srv.request("POST", "/events/api/v1/events", batch,
                        headers={"Content-Type": "application/cloudevents-batch+json"})
        self.assertIn(r.status, (200, 400, 415), r)
        ids = [e["id"] for e in evs]
        self.assertEqual(recv.wait_event_ids(ids, path, timeout=30), set())
        got, _ = srv.poll_all("resource=%s&after=0&size=5" % res)
        self.assertTrue(set(ids) <= {e["id"] for e in got})
        self.assertTrue(srv.deadletters(sids[1]).json() or recv.wait_for(3 * len(evs), bad, "event", timeout=30))
        self.assertEqual(srv.request("GET", "/metrics").status, 200)
        self.assertEqual(srv.request("GET", "/health").status, 200)
        # a connection left open and a request left half-sent at shutdown
        import socket
        idle = socket.create_connection(("127.0.0.1", srv.port))
        half = socket.create_connection(("127.0.0.1", srv.port))
        half.sendall(b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.3)
        code = srv.stop(timeout=60)
        idle.close()
        half.close()
        with open(log) as f:
            text = f.read()
        elapsed = time.monotonic() - t0
        summary = re.findall(r"(definitely|indirectly) lost: ([\d,]+) bytes", text)
        errs = re.search(r"ERROR SUMMARY: \d+ errors", text)
        print("\nmemcheck: exit %s after %.1f s; %s; %s" % (
            code, elapsed, ", ".join("%s lost %s bytes" % s for s in summary) or "all heap blocks freed",
            errs.group(0) if errs else "no error summary"), file=sys.stderr)
        self.assertEqual(code, 0, "exit status %r under memcheck (99: errors or leaks); log:\n%s" % (code, text[-6000:]))
        for kind, n in summary:
            self.assertEqual(n.replace(",", ""), "0", "%s lost %s bytes:\n%s" % (kind, n, text[-6000:]))
        self.assertIn("ERROR SUMMARY: 0 errors", text, text[-6000:])
        self.assertNotRegex(text, r"Invalid (read|write)|uninitialised|Mismatched free", text[-6000:])
        self.assertTrue(summary or "All heap blocks were freed" in text, text[-3000:])

    def enterContext_tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="hendelse-bb-vg-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    unittest.main()
