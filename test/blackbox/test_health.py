"""Health endpoint, routing (404/405), and robustness against garbage on the socket. api.md §7."""

import json
import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BBTestCase, event, media_type, raw_send  # noqa: E402


class HealthTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--auth", "none", "--authz", "allow-all")

    def assertHealthy(self):
        r = self.srv.request("GET", "/health")
        self.assertStatus(r, 200)
        self.assertEqual(media_type(r.headers.get("content-type")), "text/plain", repr(r))
        self.assertEqual(r.body, b"Healthy")

    def test_health(self):
        self.assertHealthy()
        # and over keep-alive, repeatedly
        with self.srv.connection() as c:
            for _ in range(5):
                r = c.request("GET", "/health")
                self.assertEqual((r.status, r.body), (200, b"Healthy"))

    def test_health_with_query(self):
        r = self.srv.request("GET", "/health?x=1")
        self.assertEqual((r.status, r.body), (200, b"Healthy"))

    def test_unknown_paths_404(self):
        for path in ("/", "/nope", "/healthz", "/health/x", "/events", "/events/api/v1",
                     "/events/api/v1/eventsx", "/events/api/v1/events/x", "/events/api/v2/events"):
            with self.subTest(path=path):
                r = self.srv.request("GET", path)
                self.assertStatus(r, 404)

    def test_wrong_method(self):
        for method, path in (("DELETE", "/events/api/v1/events"), ("PUT", "/events/api/v1/events"),
                             ("PATCH", "/events/api/v1/events"), ("POST", "/health"), ("PUT", "/health"),
                             ("DELETE", "/health")):
            with self.subTest(method=method, path=path):
                r = self.srv.request(method, path, body=b"{}" if method != "DELETE" else None,
                                     headers={"Content-Type": "application/cloudevents+json"})
                self.assertIn(r.status, (404, 405), repr(r))
        self.assertHealthy()

    def test_garbage_keeps_server_alive(self):
        rnd = random.Random(1234)
        for _ in range(5):
            raw_send(self.srv.port, bytes(rnd.getrandbits(8) for _ in range(4096)), read=False)
        raw_send(self.srv.port, bytes(rnd.getrandbits(8) for _ in range(300)))
        # a request line only, then close
        raw_send(self.srv.port, b"GET /heal", read=False)
        raw_send(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n", read=False)
        # a publish whose body never completes
        body = b'{"specversion":"1.0","id":"x'
        raw_send(self.srv.port, b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/cloudevents+json\r\nContent-Length: 1000\r\n\r\n" + body, read=False)
        # a broken chunked body
        raw_send(self.srv.port, b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/cloudevents+json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\nabc\r\n0\r\n\r\n")
        # nonsense header lines, an absurd content length, a header without colon
        raw_send(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        raw_send(self.srv.port, b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 99999999999999999999\r\n\r\n", read=False)
        raw_send(self.srv.port, b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -5\r\n\r\n")
        # a very long request line and a very long header
        raw_send(self.srv.port, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        raw_send(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n")
        # a binary NUL in the path, HTTP/0.9 and a bogus version
        raw_send(self.srv.port, b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n")
        raw_send(self.srv.port, b"GET /health\r\n\r\n")
        raw_send(self.srv.port, b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n")
        # a connection opened and abandoned mid-request stays open while we check health
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        try:
            s.sendall(b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
            time.sleep(0.1)
            self.assertTrue(self.srv.running(), "server died on garbage input")
            self.assertHealthy()
        finally:
            s.close()
        time.sleep(0.1)
        self.assertTrue(self.srv.running(), "server died on garbage input")
        self.assertHealthy()
        # and it still publishes
        r = self.srv.publish(event())
        self.assertStatus(r, 200)

    def test_mutated_requests(self):
        # byte-level mutations of valid requests (fixed seed, so a failure reproduces)
        rnd = random.Random(20261129)
        body = json.dumps(event()).encode()
        seeds = [
            b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json"
            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
            b"GET /events/api/v1/events?resource=urn:altinn:resource:x&after=0&type=a%25&size=5 HTTP/1.1\r\n"
            b"Host: x\r\nAltinn-AlternativeSubject: /person/1\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        ]
        for i in range(300):
            data = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 8)):
                op = rnd.random()
                pos = rnd.randrange(len(data))
                if op < 0.4:
                    data[pos] = rnd.getrandbits(8)
                elif op < 0.7:
                    del data[pos:pos + rnd.randint(1, 20)]
                else:
                    data[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 20)))
            raw_send(self.srv.port, bytes(data), read=(i % 10 == 0), timeout=0.5)
        self.assertTrue(self.srv.running(), "server died on mutated requests")
        self.assertHealthy()

    def test_clients_disconnect_while_publish_pending(self):
        # clients that close right after sending a publish: the server answers into closed sockets
        body = json.dumps(event()).encode()

        def one():
            for _ in range(40):
                ev = json.dumps(event()).encode()
                req = (b"POST /events/api/v1/events HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n"
                       % len(ev) + ev)
                raw_send(self.srv.port, req, read=False)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.3)
        self.assertTrue(self.srv.running(), "server died when clients went away")
        self.assertHealthy()
        self.assertStatus(self.srv.publish(json.loads(body)), 200)

    def test_http10(self):
        got = raw_send(self.srv.port, b"GET /health HTTP/1.0\r\n\r\n", half_close=False)
        self.assertRegex(got, rb"^HTTP/1\.[01] 200 ")
        self.assertTrue(got.endswith(b"\r\n\r\nHealthy"), got)

    def test_many_idle_connections(self):
        socks = []
        try:
            for _ in range(300):
                socks.append(socket.create_connection(("127.0.0.1", self.srv.port)))
            self.assertHealthy()
            # half of them send a request; every one is answered
            for s in socks[::2]:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks[::2]:
                s.settimeout(10)
                got = b""
                while not got.endswith(b"Healthy"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                self.assertTrue(got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"Healthy"), got)
        finally:
            for s in socks:
                s.close()
        self.assertHealthy()

    def test_pipelined_requests(self):
        got = raw_send(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", half_close=False)
        self.assertEqual(got.count(b"Healthy"), 2, got)


if __name__ == "__main__":
    unittest.main()
