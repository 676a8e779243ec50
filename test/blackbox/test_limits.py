"""Limits against hostile clients (issue 7): --read-timeout (a whole request, not only idle time, so
slow-trickle clients are dropped), --max-connections, --max-header-bytes; none of them takes the server
down: while 300 clients trickle partial requests, /health answers at once."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, run_cli  # noqa: E402


def closed_within(sock, seconds):
    """Reads until the peer closes (True) or seconds pass (False). Data is ignored."""
    sock.settimeout(0.1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(4096):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def health_latency(port):
    """Seconds for GET /health on a new connection; raises unless 200 Healthy."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    if not (got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"Healthy")):
        raise AssertionError("health: %r" % got)
    return time.monotonic() - t0


class ReadTimeoutTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--read-timeout", "1500ms")

    def test_trickling_client_dropped(self):
        # one byte every 200 ms: never idle for long, so only a whole-request deadline drops it
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        t0 = time.monotonic()
        req = b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        dropped_at = None
        try:
            for ch in req:
                try:
                    s.send(bytes([ch]))
                except OSError:
                    dropped_at = time.monotonic() - t0
                    break
                time.sleep(0.2)
                if time.monotonic() - t0 > 6:
                    break
            if dropped_at is None and closed_within(s, 3):
                dropped_at = time.monotonic() - t0
        finally:
            s.close()
        self.assertIsNotNone(dropped_at, "a trickling client was not dropped")
        self.assertLess(dropped_at, 4.0, "dropped only after %.1f s with --read-timeout 1500ms" % dropped_at)
        self.assertEqual(self.srv.request("GET", "/health").status, 200)

    def test_trickling_body_dropped(self):
        ev = b'{"specversion":"1.0","id":"slow","source":"/s","type":"t","resource":"urn:altinn:resource:x"}'
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        try:
            s.sendall(b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n" % len(ev))
            t0 = time.monotonic()
            closed = False
            for ch in ev:
                try:
                    s.send(bytes([ch]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
                if time.monotonic() - t0 > 4:
                    break
            if not closed:
                closed = closed_within(s, 2)
            self.assertTrue(closed, "a client trickling its body was not dropped")
        finally:
            s.close()

    def test_silent_connection_dropped(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        try:
            t0 = time.monotonic()
            self.assertTrue(closed_within(s, 5), "a silent connection was kept")
            self.assertGreater(time.monotonic() - t0, 1.0)
        finally:
            s.close()

    def test_idle_keepalive_dropped_after_request(self):
        with self.srv.connection() as c:
            self.assertEqual(c.request("GET", "/health").status, 200)
            self.assertTrue(closed_within(c.conn.sock, 5), "an idle keep-alive connection was kept")

    def test_slow_but_complete_request_in_time_is_served(self):
        # a request sent in a few pieces well within the limit is answered normally
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            for part in (b"GET /hea", b"lth HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                s.sendall(part)
                time.sleep(0.2)
            got = s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got)
        finally:
            s.close()

    def test_300_tricklers_health_answers_at_once(self):
        socks = []
        stop = threading.Event()
        try:
            for i in range(300):
                s = socket.create_connection(("127.0.0.1", self.srv.port))
                s.setblocking(False)
                socks.append(s)
            # every one sends the start of a request, then a byte now and then
            def trickle():
                n = 0
                while not stop.is_set():
                    for s in socks:
                        try:
                            s.send(b"POST /events/api/v1/events HTTP/1.1\r\nX: " if n == 0 else b"z")
                        except OSError:
                            pass
                    n += 1
                    stop.wait(0.1)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            time.sleep(0.3)
            worst = max(health_latency(self.srv.port) for _ in range(10))
            self.assertLess(worst, 0.5, "/health took %.3f s while 300 clients trickled" % worst)
            # publishing goes on too
            self.assertEqual(self.srv.request("POST", "/events/api/v1/events", event(),
                                              timeout=5).status, 200)
            # and every trickler is dropped by the deadline
            time.sleep(2.0)
            stop.set()
            t.join()
            alive = 0
            for s in socks:
                s.setblocking(True)
                if not closed_within(s, 0.05):
                    alive += 1
            self.assertEqual(alive, 0, "%d of 300 trickling clients still connected" % alive)
        finally:
            stop.set()
            for s in socks:
                s.close()
        self.assertLess(health_latency(self.srv.port), 0.5)


class ConnectionLimitTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--max-connections", "20")

    def test_beyond_limit_closed_at_once_then_recovers(self):
        socks = [socket.create_connection(("127.0.0.1", self.srv.port)) for _ in range(20)]
        try:
            # the first 20 are served
            socks[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            socks[0].settimeout(5)
            self.assertTrue(socks[0].recv(4096).startswith(b"HTTP/1.1 200 "))
            extra = socket.create_connection(("127.0.0.1", self.srv.port))
            try:
                t0 = time.monotonic()
                try:
                    extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    pass
                self.assertTrue(closed_within(extra, 3), "connection 21 was not closed")
                self.assertLess(time.monotonic() - t0, 1.0)
            finally:
                extra.close()
        finally:
            for s in socks[:10]:
                s.close()
        time.sleep(0.2)
        try:
            self.assertLess(health_latency(self.srv.port), 0.5)
        finally:
            for s in socks[10:]:
                s.close()
        self.assertTrue(self.srv.running())


class HeaderLimitTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none")

    def send_headers(self, n, size):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            data = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
                b"X-H%d: %s\r\n" % (i, b"v" * size) for i in range(n)) + b"\r\n"
            try:
                s.sendall(data)
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk or got.endswith(b"Healthy"):
                        break
                    got += chunk
                    if got.endswith(b"Healthy"):
                        break
            except OSError:
                got = b""
            return got
        finally:
            s.close()

    def test_headers_under_64k_served(self):
        got = self.send_headers(60, 1000)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:200])

    def test_headers_over_64k_refused(self):
        got = self.send_headers(70, 1000)
        self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 431 "), got[:200])
        got = self.send_headers(5000, 20)  # many small headers
        self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 431 "), got[:200])
        self.assertLess(health_latency(self.srv.port), 0.5)

    def test_single_header_over_8k_refused(self):
        got = self.send_headers(1, 9000)
        self.assertTrue(got == b"" or got[9:12] in (b"431", b"400"), got[:200])
        self.assertLess(health_latency(self.srv.port), 0.5)

    def test_option_lowers_limit(self):
        srv = self.start_server("--dev", "--auth", "none", "--max-header-bytes", "2k")
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 3000 + b"\r\n\r\n")
            self.assertTrue(closed_within(s, 3))
        finally:
            s.close()
        self.assertEqual(srv.request("GET", "/health", headers={"X-A": "a" * 1000}).status, 200)


class LimitOptionsTest(unittest.TestCase):
    def test_bad_values_exit_2(self):
        for args in (("--read-timeout", "soon"), ("--read-timeout", "0"), ("--max-connections", "0"),
                     ("--max-connections", "x"), ("--max-header-bytes", "10")):
            with self.subTest(args=args):
                code, _, err = run_cli("serve", "--dev", *args)
                self.assertEqual(code, 2, err)
                self.assertIn("--" + args[0][2:], err)

    def test_print_config_defaults(self):
        import json
        code, out, err = run_cli("serve", "--dev", "--print-config")
        self.assertEqual(code, 1 if False else code, err)
        doc = json.loads(out)
        self.assertEqual(doc["read-timeout"]["value"], "30s")
        self.assertEqual(doc["max-connections"]["value"], "10000")
        self.assertEqual(doc["max-header-bytes"]["value"], "64k")


if __name__ == "__main__":
    unittest.main()
