"""Findings of the fuzz targets (test/fuzz/) that need the real binary to show, kept as black-box
regression tests."""

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


def exchange(port, data, wait=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    got = b""
    try:
        s.sendall(data)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return got


def post(body):
    body = body.encode("utf-8")
    return (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


class FuzzRegressTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--read-timeout", "30s")

    def test_empty_lines_between_pipelined_requests(self):
        """fuzz_http: a request followed by a stray CRLF (RFC 9112 2.2: to be ignored) and a pipelined
        request left that one unanswered until the read timeout (libevhtp parses buffered input
        itself and stalls on an empty line)."""
        res = fresh_resource("crlf")
        data = (post(json.dumps(event(resource=res))) + b"\r\n" +
                post(json.dumps(event(resource=res))) + b"\r\n\r\n" +
                b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = exchange(self.srv.port, data)
        self.assertEqual([int(m.group(1)) for m in STATUS_RE.finditer(got)], [200, 200, 200], got)
        self.assertTrue(got.endswith(b"Healthy"), got)

    def answers_in_time(self, *pieces):
        """Sends the pieces (0.2 s apart) and reads until the server closes; returns the statuses.
        Fails unless the server has answered and closed within 2 s (the read timeout is 30 s)."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        got = b""
        try:
            t0 = time.monotonic()
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(0.2)
                s.sendall(piece)
            s.settimeout(2.0)
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    self.fail("no answer and no close within 2 s; got %r" % got)
                if not chunk:
                    break
                got += chunk
            self.assertLess(time.monotonic() - t0, 2.0 + 0.2 * len(pieces), got)
        finally:
            s.close()
        return [int(m.group(1)) for m in STATUS_RE.finditer(got)], got

    def test_lf_after_request_line(self):
        """fuzz_http: right after a request line (CRLF), a bare LF made libevhtp's parser stop
        without an error ("ODDITY, resuming when not paused"): no answer until the read timeout.
        It is refused at once, like an LF ending the headers after a header line."""
        get = b"GET /health HTTP/1.1\r\n"
        cases = [
            (get + b"\n\n",),
            (get + b"\n",),
            (b"POST /events/api/v1/events HTTP/1.1\r\n\nHost: x\r\n\r\n",),
            (get, b"\n"),                      # the LF in a later read
            (get, b"\nHost: x\r\n\r\n"),
            (b"GET /health HTTP/1.1\r", b"\n\n"),
        ]
        for pieces in cases:
            with self.subTest(pieces=pieces):
                statuses, got = self.answers_in_time(*pieces)
                self.assertEqual(statuses, [400], got)
                self.assertIn(b"Connection: close", got)

    def test_more_after_version(self):
        """Found reading the LF fix: "GET /health HTTP/1.1 \n\n" (a space before a lone LF) left
        libevhtp waiting for headers that had already ended, no answer until the read timeout (and
        no ODDITY logged, so the fuzzer could not see it). A request line with anything after its
        version is refused at once (RFC 9112 section 3), also a trailing space before CRLF (which
        libevhtp took); a well-formed one still works."""
        for line in (b"GET /health HTTP/1.1 \n\n", b"GET /health HTTP/1.1 \r\n\r\n",
                     b"GET /health HTTP/1.1\t\r\n\r\n", b"GET /health HTTP/1.1x\r\n\r\n",
                     b"GET /health HTTP/11\r\n\r\n", b"GET /health HTTP/\r\n\r\n"):
            with self.subTest(line=line):
                statuses, got = self.answers_in_time(line)
                self.assertEqual(statuses, [400], got)
        for line in (b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
                     b"GET /health HTTP/1.0\r\n\r\n"):
            with self.subTest(line=line):
                statuses, got = self.answers_in_time(line)
                self.assertEqual(statuses, [200], got)
                self.assertTrue(got.endswith(b"Healthy"), got)
        # pipelined behind an answered request: the 200 goes out, then the 400
        statuses, got = self.answers_in_time(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1 \n\n")
        self.assertEqual(statuses, [200, 400], got)

    def test_lf_after_request_line_pipelined(self):
        """The same after a pipelined request that was answered (buffered input is parsed by
        libevhtp directly, past on_read): the first reply goes out in full, then the 400."""
        good = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = [
            (good + b"GET /health HTTP/1.1\r\n\n\n",),
            (good + b"GET /health HTTP/1.1\r\n\n",),
            (good + b"POST /events/api/v1/events HTTP/1.1\r\n\nHost: x\r\n\r\n",),
            (post(json.dumps(event(resource=fresh_resource("lf")))) +
             b"GET /health HTTP/1.1\r\n\n\n",),
            (good + b"GET /health HTTP/1.1\r\n", b"\n"),
        ]
        for pieces in cases:
            with self.subTest(pieces=pieces):
                statuses, got = self.answers_in_time(*pieces)
                self.assertEqual(statuses, [200, 400], got)
                head, _, rest = got.partition(b"\r\n\r\n")
                n = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
                self.assertTrue(rest[n:].startswith(b"HTTP/1.1 400 "), got)  # the 200 in full


if __name__ == "__main__":
    unittest.main()
