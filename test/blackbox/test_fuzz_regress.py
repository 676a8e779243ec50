"""Findings of the fuzz targets (test/fuzz/) that need the real binary to show, kept as black-box
regression tests."""

import json
import os
import re
import socket
import sys
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
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--read-timeout", "5s")

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


if __name__ == "__main__":
    unittest.main()
