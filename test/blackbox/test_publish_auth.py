"""Publish (POST /events/api/v1/events): authentication, scopes, content types, size, check order.

api.md §1 (order of checks: 401, 403, 415, 413, 400) and §6 (tokens, case-insensitive scopes).
"""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, CE_JSON, PUBLISH_PATH, SCOPE_PUBLISH, SCOPE_PUBLISH_ADMIN,  # noqa: E402
                     SCOPE_SUBSCRIBE, bearer, claims, event, jwt_encode, make_token, new_secret_file,
                     token)

MAX = 4096


class PublishAuthTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-secret-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.srv = cls.start_class_server("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--authz", "allow-all", "--max-event-bytes", str(MAX))
        cls.tok = make_token(cls.secret, scope=SCOPE_PUBLISH)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def publish_with(self, tok, ev=None, **kw):
        return self.srv.publish(ev or event(), tok, **kw)

    # --- authentication ----------------------------------------------------------------------

    def test_no_token_401_empty(self):
        r = self.srv.publish(event(), None)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_not_bearer_401(self):
        for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer-ish " + self.tok, "Token " + self.tok):
            with self.subTest(authorization=value):
                r = self.srv.publish(event(), None, headers={"Authorization": value})
                self.assertStatus(r, 401)
                self.assertEmptyBody(r)

    def test_garbage_tokens_401(self):
        for tok in ("abc", "a.b.c", "a.b", "....", self.tok + "x", self.tok.replace(".", "", 1),
                    "e30.e30.", "%%%.%%%.%%%"):
            with self.subTest(token=tok):
                r = self.publish_with(tok)
                self.assertStatus(r, 401)
                self.assertEmptyBody(r)

    def test_alg_none_401(self):
        tok = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret, alg="none")
        r = self.publish_with(tok)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)
        # "none" with a valid HS256 signature over the same input is still refused.
        hs = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret)
        head_none = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret, alg="none").split(".")[0]
        r = self.publish_with(head_none + "." + hs.split(".", 1)[1])
        self.assertStatus(r, 401)

    def test_other_algs_401(self):
        for alg in ("HS384", "HS512"):
            with self.subTest(alg=alg):
                tok = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret, alg=alg)
                r = self.publish_with(tok)
                self.assertStatus(r, 401)
                self.assertEmptyBody(r)
        # Header claims RS256 but the signature is HMAC with the secret (key confusion).
        tok = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret, alg="HS256",
                         header={"alg": "RS256", "typ": "JWT"})
        self.assertStatus(self.publish_with(tok), 401)
        # Header without alg.
        tok = jwt_encode(claims(scope=SCOPE_PUBLISH), self.secret, alg="HS256", header={"typ": "JWT"})
        self.assertStatus(self.publish_with(tok), 401)

    def test_tampered_payload_401(self):
        good = make_token(self.secret, scope=SCOPE_SUBSCRIBE)
        other = make_token(self.secret, scope=SCOPE_PUBLISH)
        h, _, s = good.split(".")
        forged = h + "." + other.split(".")[1] + "." + s
        r = self.publish_with(forged)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)
        # Flip one character of the signature.
        sig = other.split(".")[2]
        flipped = other[: -len(sig)] + ("A" if sig[0] != "A" else "B") + sig[1:]
        self.assertStatus(self.publish_with(flipped), 401)

    def test_wrong_secret_401(self):
        r = self.publish_with(make_token(self.secret + "x", scope=SCOPE_PUBLISH))
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_expired_401(self):
        tok = make_token(self.secret, scope=SCOPE_PUBLISH, ttl=-120)
        r = self.publish_with(tok)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_nbf_future_401(self):
        tok = make_token(self.secret, scope=SCOPE_PUBLISH, nbf=int(time.time()) + 600)
        r = self.publish_with(tok)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_nbf_past_ok(self):
        tok = make_token(self.secret, scope=SCOPE_PUBLISH, nbf=int(time.time()) - 60)
        r = self.publish_with(tok)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)

    # --- scopes ------------------------------------------------------------------------------

    def test_valid_token_200_empty(self):
        r = self.publish_with(self.tok)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)

    def test_missing_scope_403_empty(self):
        for scope in (SCOPE_SUBSCRIBE, "", "openid", "altinn:events", "altinn:events.publishx",
                      "altinn:events.publish.", "xaltinn:events.publish"):
            with self.subTest(scope=scope):
                r = self.publish_with(make_token(self.secret, scope=scope))
                self.assertStatus(r, 403)
                self.assertEmptyBody(r)
        r = self.publish_with(make_token(self.secret, scope=None))
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)

    def test_admin_scope_passes(self):
        r = self.publish_with(make_token(self.secret, scope=SCOPE_PUBLISH_ADMIN))
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)

    def test_scope_case_insensitive(self):
        for scope in ("ALTINN:EVENTS.PUBLISH", "Altinn:Events.Publish", "ALTINN:events.publish.ADMIN"):
            with self.subTest(scope=scope):
                r = self.publish_with(make_token(self.secret, scope=scope))
                self.assertStatus(r, 200)

    def test_scope_list(self):
        r = self.publish_with(make_token(self.secret, scope="openid " + SCOPE_PUBLISH + " other:scope"))
        self.assertStatus(r, 200)

    def test_urn_altinn_scope_claim(self):
        tok = make_token(self.secret, scope=None, **{"urn:altinn:scope": SCOPE_PUBLISH})
        self.assertStatus(self.publish_with(tok), 200)

    def test_cli_token_accepted(self):
        tok = token("--secret-file", self.secret_file, "--scope", SCOPE_PUBLISH, "--org", "ttd")
        self.assertStatus(self.publish_with(tok), 200)
        tok = token("--secret-file", self.secret_file, "--scope", SCOPE_SUBSCRIBE, "--org", "ttd")
        r = self.publish_with(tok)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)

    # --- content type ------------------------------------------------------------------------

    def test_content_type_ok(self):
        for ct in (CE_JSON, CE_JSON + "; charset=utf-8", CE_JSON + ";charset=UTF-8"):
            with self.subTest(content_type=ct):
                r = self.publish_with(self.tok, content_type=ct)
                self.assertStatus(r, 200)
                self.assertEmptyBody(r)

    def test_content_type_415(self):
        for ct in ("application/json", "application/json; charset=utf-8", None, "text/plain",
                   "application/x-www-form-urlencoded", "application/cloudevents"):
            with self.subTest(content_type=ct):
                r = self.publish_with(self.tok, content_type=ct)
                self.assertStatus(r, 415)

    # --- size --------------------------------------------------------------------------------

    def padded(self, total):
        """A valid event whose JSON body is exactly total bytes."""
        ev = event(pad="")
        base = len(json.dumps(ev).encode())
        ev["pad"] = "x" * (total - base)
        body = json.dumps(ev).encode()
        self.assertEqual(len(body), total)
        return body

    def test_size_limit_exact_ok(self):
        r = self.publish_with(self.tok, ev=self.padded(MAX))
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)

    def test_size_over_413(self):
        r = self.publish_with(self.tok, ev=self.padded(MAX + 1))
        body = self.assertProblemJson(r, 413)
        self.assertEqual(body.get("status"), 413, body)
        r = self.publish_with(self.tok, ev=self.padded(MAX * 4))
        self.assertProblemJson(r, 413)

    def test_size_over_chunked_413(self):
        body = self.padded(MAX * 3)
        chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        conn = self.srv.connection()
        try:
            conn.conn.request("POST", PUBLISH_PATH, body=iter(chunks), encode_chunked=True,
                              headers=dict(bearer(self.tok), **{"Content-Type": CE_JSON,
                                                                "Transfer-Encoding": "chunked"}))
            resp = conn.conn.getresponse()
            status = resp.status
            ctype = resp.getheader("Content-Type")
            resp.read()
        finally:
            conn.close()
        self.assertEqual(status, 413)
        self.assertEqual((ctype or "").split(";")[0], "application/problem+json")

    def test_chunked_small_ok(self):
        body = json.dumps(event()).encode()
        conn = self.srv.connection()
        try:
            conn.conn.request("POST", PUBLISH_PATH, body=iter([body[:10], body[10:]]), encode_chunked=True,
                              headers=dict(bearer(self.tok), **{"Content-Type": CE_JSON,
                                                                "Transfer-Encoding": "chunked"}))
            resp = conn.conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.assertEqual((resp.status, data), (200, b""))

    def test_size_far_over_413(self):
        # a client that sends a whole 8 MiB event gets the 413 answer, not a reset connection
        body = self.padded(8 << 20)
        try:
            r = self.srv.request("POST", PUBLISH_PATH, body, dict(bearer(self.tok), **{"Content-Type": CE_JSON}))
        except (ConnectionResetError, BrokenPipeError) as e:
            self.fail("8 MiB event: connection reset instead of a 413 answer (%r)" % e)
        self.assertProblemJson(r, 413)

    # --- keep-alive across error answers -----------------------------------------------------

    def test_keepalive_survives_error_answers(self):
        no_scope = make_token(self.secret, scope=SCOPE_SUBSCRIBE)
        cases = [
            (dict(ev=event(), tok=None), 401),
            (dict(ev=event(), tok=no_scope), 403),
            (dict(ev=event(), tok=self.tok, content_type="text/plain"), 415),
            (dict(ev=event(id=None), tok=self.tok), 400),
            (dict(ev=event(resource="bad"), tok=self.tok), 400),
            (dict(ev=event(), tok=self.tok), 200),
            (dict(ev=self.padded(MAX + 100), tok=self.tok), 413),
            (dict(ev=event(), tok=self.tok), 200),
        ]
        conn = self.srv.connection()
        try:
            for kw, want in cases:
                ev = kw.pop("ev")
                tok = kw.pop("tok")
                h = {"Content-Type": kw.get("content_type", CE_JSON)}
                if tok:
                    h.update(bearer(tok))
                body = ev if isinstance(ev, bytes) else json.dumps(ev)
                # no transparent reconnect: a connection the server closes must say so (Connection: close)
                r = conn.request("POST", PUBLISH_PATH, body, h, retry=False)
                self.assertStatus(r, want)
        finally:
            conn.close()

    def test_lowercase_bearer_scheme(self):
        # RFC 9110 §11.1: the authentication scheme is case-insensitive
        for scheme in ("bearer", "BEARER"):
            with self.subTest(scheme=scheme):
                r = self.srv.publish(event(), None, headers={"Authorization": scheme + " " + self.tok})
                self.assertStatus(r, 200)

    # --- order of checks ---------------------------------------------------------------------

    def test_check_order(self):
        big_invalid = b"{" + b"x" * (MAX * 2)
        no_scope = make_token(self.secret, scope=SCOPE_SUBSCRIBE)
        # 401 before everything
        r = self.srv.publish(big_invalid, None, content_type="text/plain")
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)
        # 403 before 415
        r = self.srv.publish(big_invalid, no_scope, content_type="text/plain")
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)
        # 415 before 413
        self.assertStatus(self.srv.publish(big_invalid, self.tok, content_type="text/plain"), 415)
        # 413 before 400
        self.assertProblemJson(self.srv.publish(big_invalid, self.tok), 413)
        # 400 (CloudEvents) before the Altinn resource rule
        ev = event(id=None, resource=None)
        msg = self.assertValidationProblem(self.srv.publish(ev, self.tok))
        self.assertIn("id", msg)


if __name__ == "__main__":
    unittest.main()
