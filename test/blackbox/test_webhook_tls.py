"""https webhook endpoints (architecture.md "Command line and config": `--webhook-ca-file`) and the
production profile's refusals (api.md §4 check 1, architecture.md `--dev`).

setUpClass makes a throw-away CA and a server certificate for 127.0.0.1/localhost with the openssl
command; the receiver serves https with it. With `--webhook-ca-file` the server trusts it; without, the
TLS handshake fails (the receiver records a TLS failure and no request)."""

import ipaddress
import os
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, JSON_UTF8, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, Server, event,  # noqa: E402
                     fresh_resource, make_token, new_secret_file, wait_until)
from receiver import Receiver, make_pki  # noqa: E402

MSG_ENDPOINT = "Missing or invalid endpoint to push events towards"
RETRY = ("--retry-schedule", "50ms,100ms,150ms")
ATTEMPTS = 4
TLS_ERROR_RE = r"(?i)(tls|ssl|certificat|verif|handshake|x509|issuer|trust)"


def loopback_hostname():
    """A host name of this machine, other than localhost, that resolves to a loopback address (or None)."""
    for name in (socket.gethostname(), socket.getfqdn()):
        if not name or name.lower().rstrip(".") == "localhost" or name.replace(".", "").isdigit():
            continue
        try:
            addrs = {ai[4][0] for ai in socket.getaddrinfo(name, None, socket.AF_INET)}
        except OSError:
            continue
        if addrs and all(ipaddress.ip_address(a).is_loopback for a in addrs):
            return name
    return None


class TlsTestBase(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-tls-")
        cls.pki = make_pki(os.path.join(cls.tmp.name, "pki"))
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="ttd")
        cls.recv = Receiver(tls=cls.pki)
        cls.auth = ("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", "allow-all")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def assertJsonString(self, resp, status, message):
        self.assertStatus(resp, status)
        self.assertEqual(resp.headers.get("content-type"), JSON_UTF8, repr(resp))
        self.assertEqual(resp.json(), message)


class HttpsDeliveryTest(TlsTestBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.start_class_server("--dev", *cls.auth, "--webhook-ca-file", cls.pki["ca"], *RETRY,
                                         "--validation-schedule", "100ms,100ms")
        cls.noca = cls.start_class_server("--dev", *cls.auth, *RETRY, "--validation-schedule", "100ms,100ms")

    def test_https_with_ca_file(self):
        for host in ("127.0.0.1", "localhost"):
            with self.subTest(host=host):
                res = fresh_resource()
                path = self.recv.unique_path("tls")
                r = self.srv.create_subscription({"endPoint": self.recv.url(path, host=host), "resourceFilter": res},
                                                 self.tok)
                self.assertStatus(r, 201)
                sub = r.json()
                got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
                self.assertIs(got["validated"], True, "handshake over https with the CA file must validate")
                ev = event(resource=res, data={"x": 1})
                self.assertStatus(self.srv.publish(ev, self.tok), 200)
                self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=10), set())
                time.sleep(0.5)
                reqs = self.recv.events(path)
                self.assertEqual(len(reqs), 1)
                self.assertEqual(reqs[0].headers.get("content-type"), JSON_UTF8)
                polled = self.srv.poll("resource=%s&after=0" % res, self.tok).json()
                self.assertEqual(reqs[0].json(), polled[0])
                self.assertEqual(self.srv.deadletters(sub["id"], self.tok).json(), [])

    def test_https_without_ca_file_not_validated(self):
        res = fresh_resource()
        path = self.recv.unique_path("notrust")
        before = len(self.recv.tls_failures)
        r = self.noca.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertStatus(r, 201)
        sid = r.json()["id"]
        # the first attempt and two retries, each failing in the TLS handshake
        wait_until(lambda: len(self.recv.tls_failures) - before >= 3, timeout=10)
        time.sleep(0.8)
        self.assertEqual(self.recv.requests(path), [], "no request may be sent over an untrusted connection")
        self.assertGreaterEqual(len(self.recv.tls_failures) - before, 1)
        g = self.noca.get_subscription(sid, self.tok)
        self.assertStatus(g, 200)
        self.assertIs(g.json()["validated"], False)


class HttpsDeadLetterTest(TlsTestBase):
    def test_tls_failure_dead_letter(self):
        # Validated while the server trusted the CA; restarted on the same data without --webhook-ca-file,
        # every delivery fails in the TLS handshake and ends as a dead letter with a TLS error.
        res = fresh_resource()
        path = self.recv.unique_path("tlsdl")
        first = self.start_server("--dev", *self.auth, "--webhook-ca-file", self.pki["ca"], *RETRY)
        r = first.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertStatus(r, 201)
        sid = r.json()["id"]
        self.assertIs(first.wait_validated(sid, self.tok, timeout=10)["validated"], True)
        self.assertEqual(first.stop(), 0)
        second = self.start_server("--dev", *self.auth, *RETRY, data_dir=first.data_dir)
        g = second.get_subscription(sid, self.tok)
        self.assertStatus(g, 200)
        self.assertIs(g.json()["validated"], True, "validated survives a restart")
        before = len(self.recv.tls_failures)
        ev = event(resource=res)
        self.assertStatus(second.publish(ev, self.tok), 200)
        got = wait_until(lambda: second.deadletters(sid, self.tok).json(), timeout=10)
        self.assertTrue(got, "no dead letter")
        time.sleep(0.5)
        dls = second.deadletters(sid, self.tok).json()
        self.assertEqual(len(dls), 1, repr(dls))
        dl = dls[0]
        self.assertEqual(dl["eventId"], ev["id"])
        self.assertEqual(dl["attempts"], ATTEMPTS)
        self.assertNotIn("lastStatus", dl, repr(dl))
        self.assertIn("lastError", dl, repr(dl))
        self.assertRegex(dl["lastError"], TLS_ERROR_RE)
        self.assertEqual(self.recv.events(path), [])
        self.assertGreaterEqual(len(self.recv.tls_failures) - before, 1)

    def test_wrong_ca_not_trusted(self):
        res = fresh_resource()
        path = self.recv.unique_path("wrongca")
        srv = self.start_server("--dev", *self.auth, "--webhook-ca-file", self.pki["other_ca"],
                                "--validation-schedule", "100ms")
        r = srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": res}, self.tok)
        self.assertStatus(r, 201)
        time.sleep(1.2)
        self.assertEqual(self.recv.requests(path), [])
        self.assertIs(srv.get_subscription(r.json()["id"], self.tok).json()["validated"], False)


class ProductionProfileTest(TlsTestBase):
    """No --dev: https only, and loopback targets refused (at create, or by never connecting)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.start_class_server(*cls.auth, "--webhook-ca-file", cls.pki["ca"], *RETRY,
                                         "--validation-schedule", "100ms,100ms", "--webhook-timeout", "2s")

    def test_http_endpoint_400(self):
        plain = Receiver()
        try:
            for ep in (plain.url("/prod-http"), "http://example.com/hook", "http://hendelse-bb.invalid/x"):
                with self.subTest(endPoint=ep):
                    r = self.srv.create_subscription({"endPoint": ep, "resourceFilter": fresh_resource()}, self.tok)
                    self.assertJsonString(r, 400, MSG_ENDPOINT)
            time.sleep(0.3)
            self.assertEqual(plain.requests(), [])
        finally:
            plain.close()

    def test_loopback_https_refused(self):
        # A dedicated receiver: nothing may reach it, not even a TLS connection.
        recv = Receiver(tls=self.pki)
        try:
            for host in ("127.0.0.1", "localhost"):
                with self.subTest(host=host):
                    res = fresh_resource()
                    path = recv.unique_path("prod")
                    r = self.srv.create_subscription({"endPoint": recv.url(path, host=host), "resourceFilter": res},
                                                     self.tok)
                    if r.status == 400:
                        self.assertJsonString(r, 400, MSG_ENDPOINT)
                        continue
                    self.assertStatus(r, 201)
                    sid = r.json()["id"]
                    time.sleep(1.0)  # the handshake and its two retries would be over
                    ev = event(resource=res)
                    self.assertStatus(self.srv.publish(ev, self.tok), 200)
                    time.sleep(0.8)
                    g = self.srv.get_subscription(sid, self.tok)
                    self.assertIs(g.json()["validated"], False, "a loopback target can never validate")
            self.assertEqual(recv.requests(), [], "the production profile must not send to loopback")
            self.assertEqual(recv.tls_failures, [])
            self.assertEqual(recv.connections, 0, "the production profile must not even connect to loopback")
        finally:
            recv.close()

    def test_name_resolving_to_loopback_refused(self):
        # A host name (not a literal) that resolves to a loopback address: the create cannot tell from
        # the text, so the refusal must come from the resolved address, before any connection.
        name = loopback_hostname()
        if name is None:
            self.skipTest("no host name other than localhost resolves to loopback here")
        # control: the development profile does resolve the name and reach the receiver
        plain = Receiver()
        recv = Receiver(tls=self.pki)
        try:
            dev = self.start_server("--dev", "--auth", "none", "--validation-schedule", "100ms")
            path = plain.unique_path("ctl")
            r = dev.create_subscription({"endPoint": plain.url(path, host=name), "resourceFilter": fresh_resource()})
            self.assertStatus(r, 201)
            if not plain.wait_for(1, path, timeout=5):
                self.skipTest("the server does not resolve %r to this host, nothing to refuse" % name)
            res = fresh_resource()
            r = self.srv.create_subscription({"endPoint": recv.url("/byname", host=name), "resourceFilter": res},
                                             self.tok)
            if r.status == 400:
                self.assertJsonString(r, 400, MSG_ENDPOINT)
            else:
                self.assertStatus(r, 201)
                time.sleep(1.0)
                self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
                time.sleep(0.8)
                self.assertIs(self.srv.get_subscription(r.json()["id"], self.tok).json()["validated"], False)
            self.assertEqual(recv.requests(), [])
            self.assertEqual(recv.tls_failures, [], "the production profile connected to a loopback address")
            self.assertEqual(recv.connections, 0)
        finally:
            plain.close()
            recv.close()

    def test_public_https_endpoint_accepted(self):
        r = self.srv.create_subscription({"endPoint": "https://hendelse-bb.invalid/hook",
                                          "resourceFilter": fresh_resource()}, self.tok)
        self.assertStatus(r, 201)
        self.assertIs(r.json()["validated"], False)


if __name__ == "__main__":
    unittest.main()
