"""The command line: --version, --help, bad flags (exit 2), the data-directory lock (exit 1), signals
(exit 0), and `hendelse token`. architecture.md "Command line and config"."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, Server, binary, event,  # noqa: E402
                     jwt_decode, jwt_verify_hs256, new_secret_file, run_cli, sanitizer_report, token)


class CliTest(BBTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-cli-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def run_ok(self, *args):
        code, out, err = run_cli(*args)
        self.assertIsNone(sanitizer_report(err), err)
        return code, out, err

    def assertUsageError(self, args, code=2):
        rc, out, err = self.run_ok(*args)
        self.assertIsNotNone(rc, "still running after the timeout: %r\nstderr: %s" % (args, err))
        self.assertEqual(rc, code, "args %r: exit %r, stderr %r" % (args, rc, err))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "expected one line on stderr for %r, got %r" % (args, err))
        self.assertNotIn("listening on", out)
        return lines[0]

    # --- --version / --help ------------------------------------------------------------------

    def test_version(self):
        code, out, err = self.run_ok("--version")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"\d+\.\d+\.\d+")

    def test_help(self):
        code, out, err = self.run_ok("--help")
        self.assertEqual(code, 0, err)
        self.assertIn("serve", out)
        self.assertIn("token", out)

    # --- bad usage ---------------------------------------------------------------------------

    def test_unknown_flag(self):
        self.assertUsageError(["serve", "--listen", "127.0.0.1:0", "--data", self.data, "--no-such-flag"])
        self.assertUsageError(["--no-such-flag"])
        self.assertUsageError(["no-such-command"])

    def test_bad_values(self):
        base = ["serve", "--data", self.data]
        for extra in (["--listen", "127.0.0.1:0", "--auth", "bogus"],
                      ["--listen", "nonsense"],
                      ["--listen", "127.0.0.1:99999"],
                      ["--listen", "127.0.0.1:0", "--max-event-bytes", "abc"],
                      ["--listen", "127.0.0.1:0", "--settle", "forever"],
                      ["--listen", "127.0.0.1:0", "--sync", "sometimes"],
                      ["--listen", "127.0.0.1:0", "--listen"]):
            with self.subTest(args=extra):
                self.assertUsageError(base + extra)

    def test_token_bad_option(self):
        secret_file, _ = new_secret_file(self.tmp.name)
        self.assertUsageError(["token", "--secret-file", secret_file, "--no-such-option"])
        self.assertUsageError(["token", "--secret-file", secret_file, "--ttl", "abc"])

    def test_token_missing_secret(self):
        code, out, err = self.run_ok("token", "--secret-file", os.path.join(self.tmp.name, "nope"),
                                     "--scope", SCOPE_PUBLISH)
        self.assertNotEqual(code, 0)
        self.assertEqual(out, "")
        self.assertTrue(err.strip())

    # --- the lock ----------------------------------------------------------------------------

    def test_second_server_same_data_dir(self):
        first = self.start_server("--auth", "none", "--authz", "allow-all", data_dir=self.data)
        proc = subprocess.Popen([binary(), "serve", "--listen", "127.0.0.1:0", "--data", self.data,
                                 "--auth", "none", "--authz", "allow-all"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("second server on the same data dir did not exit; stdout %r" % out)
        err = err.decode("utf-8", "replace")
        self.assertIsNone(sanitizer_report(err), err)
        self.assertEqual(proc.returncode, 1, "stderr: %r" % err)
        self.assertTrue(err.strip(), "a clear message on stderr")
        self.assertNotIn(b"listening on", out)
        # the first one keeps serving
        self.assertTrue(first.running())
        r = first.request("GET", "/health")
        self.assertEqual((r.status, r.body), (200, b"Healthy"))
        self.assertStatus(first.publish(event()), 200)
        # once the first one is gone the directory is free again
        self.assertEqual(first.stop(), 0)
        first.start()
        self.assertEqual(first.request("GET", "/health").status, 200)

    def test_data_dir_created(self):
        nested = os.path.join(self.tmp.name, "a", "b")
        srv = self.start_server("--auth", "none", "--authz", "allow-all", data_dir=nested)
        self.assertTrue(os.path.isdir(nested))
        self.assertEqual(srv.stop(), 0)

    # --- signals -----------------------------------------------------------------------------

    def test_sigterm_exit_0(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        self.assertStatus(srv.publish(event()), 200)
        self.assertEqual(srv.stop(), 0)
        # the ready line was the one and only line on stdout
        self.assertEqual(b"".join(srv.stdout_extra), b"")

    def test_sigint_exit_0(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        self.assertStatus(srv.publish(event()), 200)
        self.assertEqual(srv.signal(signal.SIGINT), 0)

    def test_sigterm_idle_keepalive_connection(self):
        # an idle keep-alive client must not keep the server from exiting
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        conn = srv.connection()
        self.addCleanup(conn.close)
        self.assertEqual(conn.request("GET", "/health").status, 200)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 10)

    # --- hendelse token ----------------------------------------------------------------------

    def test_token_claims(self):
        secret_file, secret = new_secret_file(self.tmp.name)
        code, out, err = self.run_ok("token", "--secret-file", secret_file, "--scope", SCOPE_PUBLISH,
                                     "--org", "ttd")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, repr(out))
        tok = out.strip()
        self.assertRegex(tok, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
        header, payload, _ = jwt_decode(tok)
        self.assertEqual(header.get("alg"), "HS256")
        self.assertTrue(jwt_verify_hs256(tok, secret), "signature does not verify with the secret")
        self.assertEqual(payload.get("scope"), SCOPE_PUBLISH)
        self.assertEqual(payload.get("urn:altinn:org"), "ttd")
        self.assertIsInstance(payload.get("exp"), int)
        self.assertAlmostEqual(payload["exp"], time.time() + 3600, delta=60)

    def test_token_options(self):
        secret_file, secret = new_secret_file(self.tmp.name)
        tok = token("--secret-file", secret_file, "--scope", SCOPE_PUBLISH, "--scope", SCOPE_SUBSCRIBE,
                    "--ttl", "60", "--orgno", "991825827", "--userid", "1337", "--partyid", "50001")
        self.assertTrue(jwt_verify_hs256(tok, secret))
        _, payload, _ = jwt_decode(tok)
        self.assertEqual(payload.get("scope"), SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)
        self.assertAlmostEqual(payload["exp"], time.time() + 60, delta=30)
        self.assertEqual(str(payload.get("urn:altinn:orgNumber")), "991825827")
        self.assertEqual(str(payload.get("urn:altinn:userid")), "1337")
        self.assertEqual(str(payload.get("urn:altinn:partyid")), "50001")
        self.assertNotIn("urn:altinn:org", payload)

    def test_token_app(self):
        secret_file, secret = new_secret_file(self.tmp.name)
        tok = token("--secret-file", secret_file, "--app", "ttd/myapp")
        self.assertTrue(jwt_verify_hs256(tok, secret))
        _, payload, _ = jwt_decode(tok)
        self.assertEqual(payload.get("iss"), "ttd")
        self.assertIn(payload.get("urn:altinn:app"), ("myapp", "ttd/myapp"))

    def test_token_accepted_by_server(self):
        secret_file, secret = new_secret_file(self.tmp.name)
        other_file, _ = new_secret_file(self.tmp.name)
        srv = self.start_server("--auth", "jwt", "--jwt-hs256-secret-file", secret_file, "--authz", "allow-all")
        tok = token("--secret-file", secret_file, "--scope", SCOPE_PUBLISH, "--org", "ttd")
        r = srv.publish(event(), tok)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        bad = token("--secret-file", other_file, "--scope", SCOPE_PUBLISH, "--org", "ttd")
        self.assertStatus(srv.publish(event(), bad), 401)
        short = token("--secret-file", secret_file, "--scope", SCOPE_PUBLISH, "--ttl", "1")
        time.sleep(2.2)
        self.assertStatus(srv.publish(event(), short), 401)

    def test_secret_file_trailing_newline(self):
        # the server strips one trailing newline from the secret file (server/jwt.h contract)
        path = os.path.join(self.tmp.name, "secret-nl")
        with open(path, "w") as f:
            f.write("sekrit-value-123\n")
        srv = self.start_server("--auth", "jwt", "--jwt-hs256-secret-file", path, "--authz", "allow-all")
        from harness import make_token
        self.assertStatus(srv.publish(event(), make_token("sekrit-value-123", scope=SCOPE_PUBLISH)), 200)


if __name__ == "__main__":
    unittest.main()
