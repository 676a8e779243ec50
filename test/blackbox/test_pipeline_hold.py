"""Input that arrives while a publish waits for its commit (server/http.c, srv_request_pause): the
socket stays readable while a request is paused, so what the client sends meanwhile is held in the
connection's buffer and parsed only after the reply is out. The commit is slowed down with the test
hook HENDELSE_TEST_COMMIT_DELAY_MS so that the bytes surely arrive during the wait."""

import json
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, fresh_resource  # noqa: E402

STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
DELAY_MS = 300


def post(body, close=False):
    body = body.encode("utf-8")
    return (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/cloudevents+json\r\n" +
            (b"Connection: close\r\n" if close else b"") +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def read_all(s, wait=8.0):
    s.settimeout(wait)
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    return got


def statuses(got):
    return [int(m.group(1)) for m in STATUS_RE.finditer(got)]


class PipelineHoldTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["HENDELSE_TEST_COMMIT_DELAY_MS"] = str(DELAY_MS)
        try:
            cls.srv = cls.start_class_server("--dev", "--auth", "none", "--read-timeout", "5s")
        finally:
            os.environ.pop("HENDELSE_TEST_COMMIT_DELAY_MS", None)

    def stored(self, res):
        r = self.srv.request("GET", "/events/api/v1/events?resource=%s&after=0" % res)
        self.assertEqual(r.status, 200, r)
        return r

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=8)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def test_pipelined_during_commit_answered_in_order(self):
        """A second publish, a stray CRLF and a GET sent in pieces (the request line of the next
        request split inside its target) while the first publish waits for its commit."""
        res = fresh_resource("hold")
        evs = [event(resource=res, subject="/party/%d" % i) for i in range(2)]
        s = self.connect()
        try:
            s.sendall(post(json.dumps(evs[0])))
            time.sleep(DELAY_MS / 3000.0)  # the first publish is now waiting for its commit
            second = post(json.dumps(evs[1])) + b"\r\n"
            s.sendall(second[:20])
            time.sleep(0.05)
            s.sendall(second[20:] + b"GET /hea")
            time.sleep(DELAY_MS / 1000.0 * 1.5)  # the first reply is out, "GET /hea" is held
            s.sendall(b"lth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = read_all(s)
        finally:
            s.close()
        self.assertEqual(statuses(got), [200, 200, 200], got)
        self.assertTrue(got.endswith(b"Healthy"), got)
        self.assertEqual([e["id"] for e in self.stored(res).json()], [e["id"] for e in evs])

    def test_half_close_after_publish_still_answered(self):
        """A client that shuts down its sending side right after its request still gets the reply
        (the end of the input waits like the input does)."""
        res = fresh_resource("half")
        s = self.connect()
        try:
            s.sendall(post(json.dumps(event(resource=res))))
            s.shutdown(socket.SHUT_WR)
            got = read_all(s)
        finally:
            s.close()
        self.assertEqual(statuses(got), [200], got)
        self.assertEqual(len(self.stored(res).json()), 1)

    def test_pipelined_then_half_close(self):
        res = fresh_resource("halfpipe")
        evs = [event(resource=res, subject="/party/%d" % i) for i in range(3)]
        s = self.connect()
        try:
            s.sendall(post(json.dumps(evs[0])))
            time.sleep(DELAY_MS / 3000.0)
            s.sendall(post(json.dumps(evs[1])) + post(json.dumps(evs[2])))
            s.shutdown(socket.SHUT_WR)
            got = read_all(s)
        finally:
            s.close()
        self.assertEqual(statuses(got), [200, 200, 200], got)
        self.assertEqual([e["id"] for e in self.stored(res).json()], [e["id"] for e in evs])

    def test_client_sending_far_ahead(self):
        """More than the hold limit (64 KiB) sent ahead while a publish waits: reading stops and
        starts again; every request is answered, in order."""
        res = fresh_resource("ahead")
        evs = [event(resource=res, subject="/party/%d" % i, data={"pad": "x" * 3000}) for i in range(40)]
        s = self.connect()
        try:
            s.sendall(post(json.dumps(evs[0])))
            time.sleep(DELAY_MS / 3000.0)
            s.sendall(b"".join(post(json.dumps(e)) for e in evs[1:]) +
                      b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = read_all(s, wait=30.0)
        finally:
            s.close()
        self.assertEqual(statuses(got), [200] * 41, got[-300:])
        self.assertEqual([e["id"] for e in self.stored(res).json()], [e["id"] for e in evs])


if __name__ == "__main__":
    unittest.main()
