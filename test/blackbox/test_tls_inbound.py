"""HTTPS inbound: --tls-cert/--tls-key serve https (TLS 1.2 and 1.3 only, modern ciphers), the
ready line and links say https, bad certificates stop the start with exit 2, plain http on the https
port is refused without harm, SIGHUP reloads the certificate without dropping connections, and
--tls-client-ca requires client certificates (mutual TLS).

A throw-away CA and its certificates are made with the `openssl` command in setUpClass."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CE_JSON, POLL_CONTENT_TYPE, PUBLISH_PATH, SCOPE_PUBLISH, SCOPE_SUBSCRIBE,  # noqa: E402
                     BBTestCase, event, fresh_resource, make_token, run_cli, wait_until)

HANDSHAKE_REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                     http.client.RemoteDisconnected, socket.timeout)


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout


class CA:
    """A throw-away certificate authority in a directory, issuing with `openssl ca` (which, unlike
    `openssl x509 -req` in OpenSSL 3.0, can set any validity period, past or future)."""

    def __init__(self, d, name):
        self.d = os.path.join(d, name)
        os.makedirs(os.path.join(self.d, "issued"))
        open(os.path.join(self.d, "index.txt"), "w").close()
        with open(os.path.join(self.d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = own\n"
                    "[own]\ndir = %s\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/issued\n"
                    "serial = $dir/serial\ncertificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n"
                    "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n"
                    "[any]\ncommonName = supplied\n"
                    "[server]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n"
                    "[client]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
                    "extendedKeyUsage = clientAuth\n" % self.d)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=hendelse test " + name,
                cwd=self.d)
        self.pem = os.path.join(self.d, "ca.pem")

    def issue(self, name, cn, ext="server", rsa=False, start=None, end=None):
        """Makes name.key and name.pem (signed by this CA); returns (cert path, key path)."""
        key = os.path.join(self.d, name + ".key")
        newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        openssl("req", "-new", *newkey, "-nodes", "-keyout", key, "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=self.d)
        when = ["-startdate", start, "-enddate", end] if start else ["-days", "2"]
        openssl("ca", "-batch", "-notext", "-config", "ca.cnf", "-extensions", ext, "-in", name + ".csr",
                "-out", name + ".pem", *when, cwd=self.d)
        return os.path.join(self.d, name + ".pem"), key


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class TLSInboundTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hendelse-tls-")
        cls.ca = CA(cls.tmp, "ca")
        # RSA, so that the TLS 1.2 cipher checks (RSA key exchange, CBC) mean something
        cls.cert, cls.key = cls.ca.issue("server", "localhost", rsa=True)
        cls.cert2, cls.key2 = cls.ca.issue("server2", "localhost-renewed")
        cls.client_cert, cls.client_key = cls.ca.issue("client", "client-one", ext="client")
        cls.expired, cls.expired_key = cls.ca.issue("expired", "localhost", start="20200101000000Z",
                                                    end="20200201000000Z")
        cls.future, cls.future_key = cls.ca.issue("future", "localhost", start="20900101000000Z",
                                                  end="20900201000000Z")
        cls.rogue = CA(cls.tmp, "rogue")
        cls.rogue_cert, cls.rogue_key = cls.rogue.issue("client", "client-rogue", ext="client")
        cls.srv = cls.start_class_server("--dev", "--tls-cert", cls.cert, "--tls-key", cls.key)
        cls.tok = make_token("unverified-in-dev", scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # helpers ---------------------------------------------------------------------------------

    def client_ctx(self, cert=None, key=None, minv=None, maxv=None, ciphers=None):
        ctx = ssl.create_default_context(cafile=self.ca.pem)
        if cert:
            ctx.load_cert_chain(cert, key)
        if minv:
            ctx.minimum_version = minv
        if maxv:
            ctx.maximum_version = maxv
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx

    def https(self, srv, ctx=None, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx or self.client_ctx(),
                                           timeout=timeout)

    def get(self, conn, path, headers=None, body=None, method="GET"):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def health(self, srv, ctx=None):
        c = self.https(srv, ctx)
        try:
            return self.get(c, "/health")
        finally:
            c.close()

    def handshake(self, srv, ctx):
        """Opens a TLS connection; returns (version, cipher name, peer cert DER) or raises."""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.version(), s.cipher()[0], s.getpeercert(binary_form=True)

    def assertRefused(self, srv, ctx, request=False):
        """The handshake (or, in TLS 1.3 where a client finishes before the server has judged its
        certificate, the first request) fails."""
        with self.assertRaises(HANDSHAKE_REFUSED):
            c = self.https(srv, ctx)
            try:
                st = self.get(c, "/health")
                self.fail("request went through: %r" % (st,))
            finally:
                c.close()

    def start_cli(self, *args):
        data = tempfile.mkdtemp(dir=self.tmp)
        return run_cli("serve", "--listen", "127.0.0.1:0", "--data", data, "--dev", *args)

    def assertStartRefused(self, args, *needles):
        code, out, err = self.start_cli(*args)
        self.assertEqual(code, 2, "exit status: stdout %r stderr %r" % (out, err))
        self.assertNotIn("listening", out)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "one clear line on stderr: %r" % err)
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    # tests -----------------------------------------------------------------------------------

    def test_ready_line_says_https(self):
        self.assertRegex(self.srv.ready_line, r"^hendelse listening on https://127\.0\.0\.1:\d+$")
        self.assertEqual(self.srv.scheme, "https")

    def test_publish_and_poll_over_https(self):
        ctx = self.client_ctx()  # verifies the chain and the host name (127.0.0.1 in the SAN)
        res = fresh_resource("tls")
        ev = event(resource=res)
        auth = {"Authorization": "Bearer " + self.tok}
        c = self.https(self.srv, ctx)
        try:
            st, _, body = self.get(c, PUBLISH_PATH, dict(auth, **{"Content-Type": CE_JSON}),
                                   json.dumps(ev), "POST")
            self.assertEqual(st, 200, body)
            # the same keep-alive connection polls it back
            st, hdrs, body = self.get(c, PUBLISH_PATH + "?resource=%s&after=0" % res, auth)
            self.assertEqual(st, 200, body)
            self.assertEqual(hdrs.get("content-type"), POLL_CONTENT_TYPE)
            got = json.loads(body)
            self.assertEqual([e["id"] for e in got], [ev["id"]])
            # links use the https base URL
            self.assertTrue(hdrs.get("next", "").startswith(self.srv.base_url + "/"), hdrs)
            self.assertTrue(self.srv.base_url.startswith("https://"))
        finally:
            c.close()

    def test_tls13_and_tls12_modern_ciphers(self):
        v, cipher, _ = self.handshake(self.srv, self.client_ctx())
        self.assertEqual(v, "TLSv1.3")
        v, cipher, _ = self.handshake(self.srv, self.client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(v, "TLSv1.2")
        self.assertTrue(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher)
        # TLS 1.2 without forward secrecy, or with CBC: refused
        for weak in ("AES128-GCM-SHA256:AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384"):
            with self.subTest(ciphers=weak):
                with self.assertRaises(HANDSHAKE_REFUSED):
                    self.handshake(self.srv, self.client_ctx(maxv=ssl.TLSVersion.TLSv1_2, ciphers=weak))
        self.assertEqual(self.health(self.srv)[0], 200)

    def test_tls11_refused(self):
        try:
            with warnings.catch_warnings():  # TLSVersion.TLSv1_1 is deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx = self.client_ctx(minv=ssl.TLSVersion.TLSv1_1, maxv=ssl.TLSVersion.TLSv1_1,
                                      ciphers="DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            self.skipTest("this Python/OpenSSL cannot make a TLS 1.1 client: %s" % e)
        try:
            got = self.handshake(self.srv, ctx)
            self.fail("TLS 1.1 handshake succeeded: %r" % (got,))
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e) or "no protocols available" in str(e):
                self.skipTest("this OpenSSL refuses to offer TLS 1.1 itself: %s" % e)
            # the server answered with a protocol_version alert
            self.assertTrue("VERSION" in str(e).upper() or "PROTOCOL" in str(e).upper(), str(e))
        except (ConnectionResetError, BrokenPipeError):
            pass
        self.assertEqual(self.health(self.srv)[0], 200)

    def test_plain_http_refused_cleanly(self):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
        self.assertLess(time.monotonic() - t0, 5, "the server should close at once, not time out")
        self.assertNotIn(b"Healthy", got)
        self.assertFalse(got.startswith(b"HTTP/1.1 2"), got)
        # through http.client too
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        with self.assertRaises((http.client.HTTPException, ConnectionResetError, BrokenPipeError)):
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status != 400:
                self.fail("plain http got %d" % r.status)
            raise http.client.HTTPException("400 is a clean refusal")
        c.close()
        # the server keeps serving https
        self.assertTrue(self.srv.running())
        st, _, body = self.health(self.srv)
        self.assertEqual((st, body), (200, b"Healthy"))

    def test_expired_certificate_refused_at_start(self):
        line = self.assertStartRefused(["--tls-cert", self.expired, "--tls-key", self.expired_key],
                                       "expired", self.expired)
        self.assertTrue(line.startswith("hendelse serve: "), line)

    def test_not_yet_valid_certificate_refused_at_start(self):
        self.assertStartRefused(["--tls-cert", self.future, "--tls-key", self.future_key],
                                "not valid yet", self.future)

    def test_mismatched_key_refused_at_start(self):
        self.assertStartRefused(["--tls-cert", self.cert, "--tls-key", self.key2],
                                "does not match", self.key2)
        # a key of the same type but another pair
        self.assertStartRefused(["--tls-cert", self.cert2, "--tls-key", self.client_key],
                                "does not match")

    def test_unreadable_or_bad_files_refused_at_start(self):
        missing = os.path.join(self.tmp, "nope.pem")
        self.assertStartRefused(["--tls-cert", missing, "--tls-key", self.key], "cannot read", missing)
        self.assertStartRefused(["--tls-cert", self.cert, "--tls-key", missing], "cannot read", missing)
        junk = os.path.join(self.tmp, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        self.assertStartRefused(["--tls-cert", junk, "--tls-key", self.key], "--tls-cert", junk)
        self.assertStartRefused(["--tls-cert", self.cert, "--tls-key", junk], "--tls-key", junk)
        self.assertStartRefused(["--tls-cert", self.cert, "--tls-key", self.key, "--tls-client-ca", junk],
                                "--tls-client-ca", junk)
        self.assertStartRefused(["--tls-cert", self.cert], "--tls-key")
        self.assertStartRefused(["--tls-key", self.key], "--tls-cert")
        self.assertStartRefused(["--tls-client-ca", self.ca.pem], "--tls-client-ca")

    def test_sighup_reloads_certificate(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        srv = self.start_server("--dev", "--tls-cert", cert, "--tls-key", key)
        old_der, new_der = der_of(self.cert), der_of(self.cert2)
        self.assertEqual(self.handshake(srv, self.client_ctx())[2], old_der)

        keep = self.https(srv)
        self.assertEqual(self.get(keep, "/health")[0], 200)
        sock = keep.sock

        # a renewed certificate and key (another key pair, serial and subject)
        for src, dst in ((self.cert2, cert), (self.key2, key)):
            shutil.copy(src, dst + ".new")
            os.replace(dst + ".new", dst)
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "reloaded certificate" in srv.stderr_text(), 10),
                        srv.stderr_text())
        self.assertIn("localhost-renewed", srv.stderr_text())
        self.assertEqual(self.handshake(srv, self.client_ctx())[2], new_der)
        # the connection opened before keeps working, on the same socket, with the old certificate
        self.assertEqual(self.get(keep, "/health")[0], 200)
        self.assertIs(keep.sock, sock)
        self.assertEqual(keep.sock.getpeercert(binary_form=True), old_der)
        self.assertEqual(self.get(keep, "/health")[0], 200)

        # a bad file at reload: the current certificate stays, an error is logged
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "reload failed" in srv.stderr_text(), 10), srv.stderr_text())
        self.assertTrue(srv.running())
        self.assertEqual(self.handshake(srv, self.client_ctx())[2], new_der)
        # an expired one is refused at reload too; a missing key as well
        shutil.copy(self.expired, cert)
        shutil.copy(self.expired_key, key)
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: srv.stderr_text().count("reload failed") >= 2, 10))
        self.assertIn("expired", srv.stderr_text())
        self.assertEqual(self.handshake(srv, self.client_ctx())[2], new_der)
        self.assertEqual(self.get(keep, "/health")[0], 200)
        keep.close()
        # and back to a good pair
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: srv.stderr_text().count("reloaded certificate") >= 2, 10))
        self.assertEqual(self.handshake(srv, self.client_ctx())[2], old_der)
        self.assertEqual(srv.stop(), 0)

    def test_mutual_tls(self):
        srv = self.start_server("--dev", "--tls-cert", self.cert, "--tls-key", self.key,
                                "--tls-client-ca", self.ca.pem)
        self.assertTrue(srv.ready_line.startswith("hendelse listening on https://"))
        # no client certificate: refused (TLS 1.3 and 1.2)
        self.assertRefused(srv, self.client_ctx())
        self.assertRefused(srv, self.client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
        # a certificate from another CA: refused
        self.assertRefused(srv, self.client_ctx(self.rogue_cert, self.rogue_key))
        # a certificate from the CA: served
        good = self.client_ctx(self.client_cert, self.client_key)
        self.assertEqual(self.health(srv, good)[0], 200)
        self.assertEqual(self.health(srv, self.client_ctx(self.client_cert, self.client_key,
                                                          maxv=ssl.TLSVersion.TLSv1_2))[0], 200)
        c = self.https(srv, good)
        try:
            for _ in range(3):
                self.assertEqual(self.get(c, "/health")[2], b"Healthy")
        finally:
            c.close()
        self.assertTrue(srv.running())
        self.assertEqual(srv.stop(), 0)

    def test_plain_server_stays_http(self):
        code, out, err = run_cli("serve", "--help")
        self.assertEqual(code, 0)
        for opt in ("--tls-cert", "--tls-key", "--tls-client-ca"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    unittest.main()
