"""Hostile HTTP against the real binary over raw sockets (issue 7): chunked bodies, pipelining,
HTTP/1.0, Expect: 100-continue, random bytes, invalid UTF-8, deep nesting, NUL bytes, duplicate keys,
numbers out of range, long and many headers, request lines without a version, lone LF line endings,
split request lines. Each gets a clear 4xx (or 505) or is handled correctly, and /health answers after
every test. What test_health.py, test_publish_validation.py and test_publish_auth.py already cover (a
small chunked body, 413 on chunked, GET pipelining, HTTP/1.0 GET, garbage survival, invalid UTF-8 in a
value, [[[ nesting) is not repeated."""

import json
import os
import random
import re
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, fresh_resource  # noqa: E402

CE = b"application/cloudevents+json"
STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def exchange(port, parts, wait=3.0, pause=0.05, half_close=False):
    """Sends parts (bytes, or a list of bytes sent with a pause between) on a new connection and reads
    until the server closes or wait seconds pass without data. Returns the bytes received."""
    if isinstance(parts, bytes):
        parts = [parts]
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    got = b""
    try:
        for i, p in enumerate(parts):
            if i:
                time.sleep(pause)
            s.sendall(p)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()
    return got


def statuses(data):
    return [int(m.group(1)) for m in STATUS_RE.finditer(data)]


def post(body, extra=b"", close=True, version=b"1.1"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return (b"POST /events/api/v1/events HTTP/" + version + b"\r\nHost: x\r\nContent-Type: " + CE + b"\r\n"
            + (b"Connection: close\r\n" if close else b"") + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


class HostileTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--read-timeout", "3s")

    def tearDown(self):
        # the server keeps serving after every hostile case
        self.assertTrue(self.srv.running(), "server died")
        r = self.srv.request("GET", "/health", timeout=5)
        self.assertEqual((r.status, r.body), (200, b"Healthy"))
        super().tearDown()

    def publish_raw(self, body, extra=b""):
        got = exchange(self.srv.port, post(body, extra))
        st = statuses(got)
        self.assertEqual(len(st), 1, got)
        return st[0], got

    def assert400(self, body, extra=b""):
        st, got = self.publish_raw(body, extra)
        self.assertEqual(st, 400, got)
        self.assertIn(b"application/problem+json", got)
        return got

    def stored(self, res):
        r = self.srv.request("GET", "/events/api/v1/events?resource=%s&after=0" % res)
        self.assertEqual(r.status, 200, r)
        return r

    # chunked request bodies --------------------------------------------------------------------

    def test_chunked_many_small_chunks(self):
        res = fresh_resource("chunk")
        ev = event(resource=res, data={"text": "x" * 3000})
        body = json.dumps(ev).encode()
        req = (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + CE +
               b"\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 7))
        self.assertEqual(statuses(exchange(self.srv.port, req)), [200])
        self.assertEqual(self.stored(res).json()[0]["data"], ev["data"])

    def test_chunked_split_across_writes(self):
        res = fresh_resource("chunk")
        ev = event(resource=res)
        data = chunked(json.dumps(ev).encode(), 40)
        head = (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + CE +
                b"\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        parts = [head] + [data[i:i + 13] for i in range(0, len(data), 13)]
        self.assertEqual(statuses(exchange(self.srv.port, parts, pause=0.01)), [200])
        self.assertEqual([e["id"] for e in self.stored(res).json()], [ev["id"]])

    def test_chunked_bad_size_and_truncated(self):
        head = (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + CE +
                b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        for tail in (b"-5\r\nabc\r\n0\r\n\r\n", b"fffffffffffffffffffff\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"):
            with self.subTest(tail=tail):
                got = exchange(self.srv.port, head + tail, wait=1.0, half_close=True)
                self.assertTrue(got == b"" or statuses(got)[0] in (400, 413), got)

    # pipelining, HTTP/1.0, Expect ------------------------------------------------------------------

    def test_pipelined_publishes_answered_in_order(self):
        res = fresh_resource("pipe")
        evs = [event(resource=res, subject="/party/%d" % i) for i in range(3)]
        data = (post(json.dumps(evs[0]), close=False) + post(b'{"not":"an event"}', close=False) +
                post(json.dumps(evs[1]), close=False) + post(json.dumps(evs[2]), close=False) +
                b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = exchange(self.srv.port, data)
        self.assertEqual(statuses(got), [200, 400, 200, 200, 200], got)
        self.assertTrue(got.endswith(b"Healthy"))
        self.assertEqual([e["id"] for e in self.stored(res).json()], [e["id"] for e in evs])

    def test_http10_publish_closes(self):
        res = fresh_resource("h10")
        got = exchange(self.srv.port, post(json.dumps(event(resource=res)), close=False, version=b"1.0"))
        self.assertRegex(got, rb"^HTTP/1\.[01] 200 ")
        self.assertEqual(len(statuses(got)), 1)
        self.assertEqual(len(self.stored(res).json()), 1)

    def test_http10_keepalive(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            for _ in range(3):
                s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                got = b""
                while not got.endswith(b"Healthy"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "closed a keep-alive HTTP/1.0 connection: %r" % got)
                    got += chunk
                self.assertRegex(got, rb"^HTTP/1\.[01] 200 ")
                self.assertIn(b"keep-alive", got.lower())
        finally:
            s.close()

    def test_expect_100_continue_small_body(self):
        res = fresh_resource("exp")
        body = json.dumps(event(resource=res)).encode()
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            s.sendall(b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + CE +
                      b"\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
            got = s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got)
            s.sendall(body)
            while not re.search(rb"\r\n\r\n.*HTTP/1\.1 \d{3} .*\r\n\r\n", got, re.S):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
        self.assertEqual(statuses(got), [100, 200], got)
        self.assertEqual(len(self.stored(res).json()), 1)

    def test_expect_100_continue_over_limit(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            s.sendall(b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + CE +
                      b"\r\nExpect: 100-continue\r\nContent-Length: 50000000\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
        # refused at once, without inviting the body
        self.assertNotIn(b"100 Continue", got)
        self.assertEqual(statuses(got), [413], got)

    # bytes that are not HTTP -------------------------------------------------------------------

    def test_random_bytes(self):
        rnd = random.Random(77)
        for i in range(60):
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2000)))
            got = exchange(self.srv.port, data, wait=0.3, half_close=(i % 2 == 0))
            st = statuses(got)
            self.assertTrue(st == [] or st[0] in (400, 408, 413, 431, 505), got[:200])

    def test_tls_hello_on_plain_http(self):
        hello = bytes.fromhex("160301020001000001fc0303") + os.urandom(32)
        t0 = time.monotonic()
        got = exchange(self.srv.port, hello)
        self.assertEqual(statuses(got), [400], got)
        self.assertLess(time.monotonic() - t0, 1.0, "a TLS hello was held instead of refused")

    def test_request_line_without_version(self):
        for line in (b"GET /health\r\n\r\n", b"POST /events/api/v1/events\r\n\r\n", b"GET /health\n\n"):
            with self.subTest(line=line):
                self.assertEqual(statuses(exchange(self.srv.port, line)), [400])

    def test_unsupported_versions(self):
        for v in (b"HTTP/2.0", b"HTTP/9.9", b"HTTP/0.9"):
            with self.subTest(v=v):
                st = statuses(exchange(self.srv.port, b"GET /health " + v + b"\r\nHost: x\r\n\r\n"))
                self.assertTrue(st in ([400], [505]), st)

    def test_lone_lf_line_endings(self):
        got = exchange(self.srv.port, b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n")
        self.assertTrue(statuses(got) == [400] or (statuses(got) == [200] and got.endswith(b"Healthy")), got)
        body = json.dumps(event()).encode()
        got = exchange(self.srv.port, b"POST /events/api/v1/events HTTP/1.1\nHost: x\nContent-Type: " + CE +
                       b"\nContent-Length: %d\n\n" % len(body) + body)
        self.assertIn(statuses(got), ([400], [200]), got)

    def test_empty_lines_before_request(self):
        got = exchange(self.srv.port, [b"\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
        self.assertEqual(statuses(got), [200], got)

    def test_request_line_split_between_reads(self):
        # libevhtp 1.2.18 corrupted a request target split between two reads ("/eveents"); the
        # server holds the line back until it is whole
        res = fresh_resource("split")
        self.assertEqual(self.srv.publish(event(resource=res)).status, 200)
        parts = [b"GET /events/api/v1/ev", b"ents?resource=" + res.encode() + b"&af",
                 b"ter=0 HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n\r\n"]
        got = exchange(self.srv.port, parts, pause=0.1)
        self.assertEqual(statuses(got), [200], got)
        self.assertIn(res.encode(), got)

    # headers --------------------------------------------------------------------------------

    def test_long_header_lines(self):
        ok = exchange(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: " +
                      b"a" * 8000 + b"\r\n\r\n")
        self.assertEqual(statuses(ok), [200])
        for n in (9000, 100000):
            with self.subTest(n=n):
                got = exchange(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * n + b"\r\n\r\n")
                self.assertIn(statuses(got), ([], [400], [431]), got[:200])

    def test_many_headers(self):
        got = exchange(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                       b"".join(b"X-%d: y\r\n" % i for i in range(1000)) + b"\r\n")
        self.assertEqual(statuses(got), [200])
        got = exchange(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" +
                       b"".join(b"X-%d: %s\r\n" % (i, b"y" * 200) for i in range(1000)) + b"\r\n")
        self.assertIn(statuses(got), ([], [431]), got[:200])

    # JSON ---------------------------------------------------------------------------------------

    def test_invalid_utf8_variants(self):
        base = json.dumps(event(data={"s": "PLACE"})).encode()
        for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80", b"\xfe\xff"):
            with self.subTest(bad=bad):
                self.assert400(base.replace(b"PLACE", bad))
        # in a member name
        self.assert400(base.replace(b'"s"', b'"\xff"'))
        # an unpaired surrogate written as an escape
        self.assert400(base.replace(b'"PLACE"', b'"\\ud800"'))
        self.assert400(base.replace(b'"PLACE"', b'"\\udc00x"'))

    def test_deep_object_nesting(self):
        for depth in (64, 100000):
            with self.subTest(depth=depth):
                data = '{"a":' * depth + "1" + "}" * depth
                body = json.dumps(event()).replace('"specversion"', '"data":' + data + ',"specversion"', 1)
                st, got = self.publish_raw(body)
                self.assertIn(st, (200, 400, 413), got)
        # unbalanced and unterminated
        st, got = self.publish_raw('{"data":' + "[" * 50000)
        self.assertIn(st, (400, 413), got)

    def test_nul_escaped(self):
        res = fresh_resource("nul")
        ev = event(resource=res, data={"s": "a\u0000b"})
        st, got = self.publish_raw(json.dumps(ev))
        self.assertEqual(st, 200, got)  # inside data a NUL is just a character
        self.assertEqual(self.stored(res).json()[0]["data"], {"s": "a\u0000b"})
        for attr in ("id", "source", "type", "subject"):
            with self.subTest(attr=attr):
                bad = event(**{attr: "/a\u0000b"})
                self.assert400(json.dumps(bad))

    def test_nul_raw(self):
        body = json.dumps(event(data={"s": "aXb"})).encode()
        self.assert400(body.replace(b"aXb", b"a\x00b"))  # a control character inside a string
        self.assert400(body + b"\x00")                   # after the document
        self.assert400(b"\x00" + body)
        self.assert400(body.replace(b'"specversion"', b'\x00"specversion"'))

    def test_duplicate_keys(self):
        ev = event()
        body = json.dumps(ev)
        got = self.assert400(body.replace('"specversion"', '"id":"other","specversion"', 1))
        self.assertIn(b"duplicate", got)
        got = self.assert400(json.dumps(event(data={"a": 1})).replace('{"a": 1}', '{"a": 1, "a": 2}'))
        self.assertIn(b"duplicate", got)
        # the same key in different objects is fine
        self.assertEqual(self.publish_raw(json.dumps(event(data={"a": {"a": {"a": 1}}})))[0], 200)

    def test_numbers_out_of_range_in_data(self):
        # data is stored as written: a number JSON allows but a double cannot hold is kept verbatim
        res = fresh_resource("num")
        for lit in ("123456789012345678901234567890", "1e400", "-1e400", "1e-400", "-0", "-0.0",
                    "1.00000000000000000000000000001", "18446744073709551616"):
            with self.subTest(lit=lit):
                body = json.dumps(event(resource=res, data={"n": "PLACE"})).replace('"PLACE"', lit)
                st, got = self.publish_raw(body)
                self.assertEqual(st, 200, got)
        page = self.stored(res).body
        for lit in (b"123456789012345678901234567890", b"1e400", b"-1e400", b"1e-400", b"18446744073709551616"):
            self.assertIn(b'"n":' + lit, page)
        for bad in ("01", "1.", ".5", "+1", "1e", "NaN", "Infinity", "0x10"):
            with self.subTest(bad=bad):
                self.assert400(json.dumps(event(data={"n": "PLACE"})).replace('"PLACE"', bad))

    def test_numbers_out_of_range_in_extensions(self):
        # extension attributes are strings, booleans or integers within 32 bits (CloudEvents 1.0)
        for lit in ("123456789012345678901234567890", "1e400", "2147483648", "1.5"):
            with self.subTest(lit=lit):
                body = json.dumps(event()).replace('"specversion"', '"myext":%s,"specversion"' % lit, 1)
                st, got = self.publish_raw(body)
                self.assertIn(st, (200, 400), got)
                if lit in ("123456789012345678901234567890", "1e400"):
                    self.assertEqual(st, 400, got)


if __name__ == "__main__":
    unittest.main()
