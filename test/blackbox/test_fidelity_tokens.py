"""Asymmetric token verification (architecture.md "Command line and config": `--auth jwt` with
`--jwt-public-key-file`; api.md §1 and §6): RS256 and ES256 tokens made independently with the `openssl`
command and with `hendelse token --key-file` are accepted; forgeries are refused with 401 (changed
payload, `alg: none`, HS256 keyed with the public key's PEM bytes, algorithms outside the allow-list of
the key type, a DER ECDSA signature, a foreign key, expiry); a `PlatformAccessToken` verified with the
same keys lets a caller without the publish scope publish, a forged one does not (403).

Keys are generated per run with `openssl genpkey`; tokens are signed in Python by piping the signing
input through `openssl dgst -sha256 -sign`, and the ES256 DER signature is converted to JOSE r||s here.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, b64url, b64url_decode,  # noqa: E402
                     claims, event, fresh_resource, jwt_decode, jwt_encode, new_secret_file,
                     run_cli, token)


# --------------------------------------------------------------------------------------------------
# openssl helpers


def openssl(*args, data=None, cwd=None):
    proc = subprocess.run(["openssl"] + [str(a) for a in args], input=data, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(str(a) for a in args), proc.returncode,
                                                          proc.stderr.decode("utf-8", "replace")))
    return proc.stdout


def gen_key(directory, name, kind):
    """Generates a private key (kind: rsa2048, rsa1024, p256, p384) and its public key with openssl;
    returns (private key path, public key path)."""
    priv = os.path.join(directory, name + ".key")
    pub = os.path.join(directory, name + ".pub.pem")
    if kind.startswith("rsa"):
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%s" % kind[3:], "-out", priv)
    else:
        curve = {"p256": "P-256", "p384": "P-384"}[kind]
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:%s" % curve, "-out", priv)
    openssl("pkey", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def _der_len(buf, i):
    n = buf[i]
    i += 1
    if n < 0x80:
        return n, i
    k = n & 0x7F
    return int.from_bytes(buf[i:i + k], "big"), i + k


def ecdsa_der_to_raw(der, size=32):
    """DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> the JOSE form r||s, each size bytes."""
    if der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    _, i = _der_len(der, 1)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER INTEGER")
        n, i = _der_len(der, i + 1)
        v = int.from_bytes(der[i:i + n], "big")
        i += n
        out += v.to_bytes(size, "big")
    return out


def ecdsa_raw_to_der(raw):
    """JOSE r||s -> DER ECDSA-Sig-Value."""
    half = len(raw) // 2

    def integer(b):
        b = b.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b

    body = integer(raw[:half]) + integer(raw[half:])
    return b"\x30" + bytes([len(body)]) + body


def signing_input(header, payload):
    return (b64url(json.dumps(header, separators=(",", ":"))) + "." +
            b64url(json.dumps(payload, separators=(",", ":"))))


def openssl_sign(key, data, digest="sha256", pss=False):
    """Signature bytes of data (str/bytes) with the PEM private key at key (DER for EC keys)."""
    if isinstance(data, str):
        data = data.encode("ascii")
    args = ["dgst", "-" + digest, "-sign", key]
    if pss:
        args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
    return openssl(*args, data=data)


def openssl_verify(pub, data, sig, directory, digest="sha256"):
    """True if openssl accepts sig (DER for EC) over data with the public key at pub."""
    if isinstance(data, str):
        data = data.encode("ascii")
    sig_path = os.path.join(directory, "sig-%d.bin" % time.monotonic_ns())
    with open(sig_path, "wb") as f:
        f.write(sig)
    proc = subprocess.run(["openssl", "dgst", "-" + digest, "-verify", pub, "-signature", sig_path],
                          input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    os.unlink(sig_path)
    return proc.returncode == 0


def sign_jwt(payload, key, alg, header=None):
    """A compact JWT over payload signed by openssl with key: alg RS256/RS512/PS256 (RSA) or ES256
    (P-256; raw r||s). header replaces the default {"alg": alg, "typ": "JWT"}."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    si = signing_input(hdr, payload)
    if alg == "ES256":
        sig = ecdsa_der_to_raw(openssl_sign(key, si))
    elif alg == "ES256-DER":
        sig = openssl_sign(key, si)
    elif alg == "RS512":
        sig = openssl_sign(key, si, digest="sha512")
    elif alg == "PS256":
        sig = openssl_sign(key, si, pss=True)
    else:
        sig = openssl_sign(key, si)
    return si + "." + b64url(sig)


def with_payload(tok, payload):
    """tok with its payload part replaced (header and signature kept)."""
    h, _, s = tok.split(".")
    return h + "." + b64url(json.dumps(payload, separators=(",", ":"))) + "." + s


def with_header(tok, header):
    _, p, s = tok.split(".")
    return b64url(json.dumps(header, separators=(",", ":"))) + "." + p + "." + s


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------------------------------


class Keys:
    """One set of throw-away keys for the whole file (RSA generation is the slow part)."""
    tmp = None

    @classmethod
    def get(cls):
        if cls.tmp is None:
            cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-fidtok-")
            d = cls.tmp.name
            cls.rsa, cls.rsa_pub = gen_key(d, "rsa", "rsa2048")
            cls.ec, cls.ec_pub = gen_key(d, "ec", "p256")
            cls.rsa_other, cls.rsa_other_pub = gen_key(d, "rsa-other", "rsa2048")
            cls.ec_other, cls.ec_other_pub = gen_key(d, "ec-other", "p256")
        return cls


def tearDownModule():
    if Keys.tmp is not None:
        Keys.tmp.cleanup()


class TokenTestBase(BBTestCase):

    @classmethod
    def setUpClass(cls):
        cls.k = Keys.get()
        cls.dir = cls.k.tmp.name

    def pub_claims(self, **kw):
        kw.setdefault("scope", SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)
        return claims(**kw)

    def assertAccepted(self, srv, tok, what=""):
        res = fresh_resource("fidtok")
        ev = event(resource=res)
        r = srv.publish(ev, tok)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")
        r = srv.poll("resource=%s&after=0" % res, tok)
        self.assertEqual(self.assertPollPage(r), [ev], what)

    def assertRefused(self, srv, tok, what=""):
        r = srv.publish(event(resource=fresh_resource("fidtok")), tok)
        self.assertEqual(r.status, 401, "%s: expected 401, got %r" % (what, r))
        self.assertEqual(r.body, b"", "%s: 401 has an empty body: %r" % (what, r))
        r = srv.poll("resource=%s&after=0" % fresh_resource("fidtok"), tok)
        self.assertEqual(r.status, 401, "%s (GET): expected 401, got %r" % (what, r))


class BothKeysTest(TokenTestBase):
    """A server with one RSA and one P-256 public key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.start_class_server("--auth", "jwt", "--authz", "allow-all",
                                         "--jwt-public-key-file", cls.k.rsa_pub,
                                         "--jwt-public-key-file", cls.k.ec_pub)

    # accepted --------------------------------------------------------------------------------

    def test_rs256_openssl_signed_accepted(self):
        tok = sign_jwt(self.pub_claims(), self.k.rsa, "RS256")
        self.assertAccepted(self.srv, tok, "RS256")
        # without "typ", and with a kid the server does not know: still the same key set
        tok = sign_jwt(self.pub_claims(), self.k.rsa, "RS256", header={"alg": "RS256"})
        self.assertAccepted(self.srv, tok, "RS256 without typ")

    def test_es256_openssl_signed_accepted(self):
        tok = sign_jwt(self.pub_claims(), self.k.ec, "ES256")
        self.assertEqual(len(jwt_decode(tok)[2]), 64)
        self.assertAccepted(self.srv, tok, "ES256")
        tok = sign_jwt(self.pub_claims(), self.k.ec, "ES256", header={"alg": "ES256"})
        self.assertAccepted(self.srv, tok, "ES256 without typ")

    def test_many_es256_signatures_accepted(self):
        # r or s with a leading zero byte (1 in 128 signatures) must still be left-padded correctly:
        # sign a few dozen tokens so that short integers are very likely among them
        for i in range(40):
            tok = sign_jwt(self.pub_claims(n=i), self.k.ec, "ES256")
            r = self.srv.publish(event(resource=fresh_resource("fidtok")), tok)
            self.assertStatus(r, 200)

    def test_hendelse_token_rs256(self):
        tok = token("--key-file", self.k.rsa, "--scope", SCOPE_PUBLISH, "--scope", SCOPE_SUBSCRIBE,
                    "--org", "ttd")
        head, body, sig = jwt_decode(tok)
        self.assertEqual(head.get("alg"), "RS256")
        self.assertEqual(body.get("urn:altinn:org"), "ttd")
        self.assertEqual(body.get("scope"), SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)
        self.assertEqual(len(sig), 256)
        # checked independently of the binary
        si = tok.rsplit(".", 1)[0]
        self.assertTrue(openssl_verify(self.k.rsa_pub, si, sig, self.dir), "openssl rejects the RS256 signature")
        self.assertFalse(openssl_verify(self.k.rsa_other_pub, si, sig, self.dir))
        self.assertAccepted(self.srv, tok, "hendelse token RS256")

    def test_hendelse_token_es256(self):
        tok = token("--key-file", self.k.ec, "--scope", SCOPE_PUBLISH, "--scope", SCOPE_SUBSCRIBE,
                    "--org", "ttd")
        head, body, sig = jwt_decode(tok)
        self.assertEqual(head.get("alg"), "ES256")
        self.assertEqual(len(sig), 64, "ES256 signatures are raw r||s (RFC 7518 §3.4)")
        si = tok.rsplit(".", 1)[0]
        self.assertTrue(openssl_verify(self.k.ec_pub, si, ecdsa_raw_to_der(sig), self.dir),
                        "openssl rejects the ES256 signature")
        self.assertAccepted(self.srv, tok, "hendelse token ES256")

    def test_hendelse_token_unsupported_key(self):
        d = tempfile.mkdtemp(dir=self.dir)
        small, _ = gen_key(d, "rsa1024", "rsa1024")
        p384, _ = gen_key(d, "p384", "p384")
        for key in (small, p384, os.path.join(d, "missing.pem")):
            code, out, err = run_cli("token", "--key-file", key, "--scope", SCOPE_PUBLISH)
            self.assertEqual(code, 2, "token --key-file %s: %r %r" % (key, out, err))
            self.assertEqual(out, "")
            self.assertEqual(len(err.strip().splitlines()), 1, repr(err))

    # refused ---------------------------------------------------------------------------------

    def test_changed_payload_refused(self):
        for key, alg in ((self.k.rsa, "RS256"), (self.k.ec, "ES256")):
            good = sign_jwt(self.pub_claims(scope=SCOPE_SUBSCRIBE), key, alg)
            # more scope, another org, a later expiry: the signature no longer covers the payload
            for change in ({"scope": SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE + " altinn:events.publish.admin"},
                           {"urn:altinn:org": "skd"}, {"exp": int(time.time()) + 86400 * 365}):
                payload = dict(jwt_decode(good)[1])
                payload.update(change)
                self.assertRefused(self.srv, with_payload(good, payload), "%s changed %r" % (alg, change))

    def test_tampered_signature_refused(self):
        for key, alg in ((self.k.rsa, "RS256"), (self.k.ec, "ES256")):
            good = sign_jwt(self.pub_claims(), key, alg)
            head, _, sig = good.rpartition(".")
            raw = bytearray(b64url_decode(sig))
            raw[len(raw) // 2] ^= 0x01
            self.assertRefused(self.srv, head + "." + b64url(bytes(raw)), alg + " flipped bit")
            self.assertRefused(self.srv, head + "." + b64url(bytes(raw[:-1])), alg + " truncated")
            self.assertRefused(self.srv, head + ".", alg + " empty signature")
            # all-zero signatures (for ECDSA r = s = 0, the "psychic signature")
            self.assertRefused(self.srv, head + "." + b64url(bytes(len(raw))), alg + " all-zero signature")

    def test_alg_none_refused(self):
        payload = self.pub_claims()
        real = sign_jwt(payload, self.k.rsa, "RS256")
        real_sig = real.rsplit(".", 1)[1]
        for alg in ("none", "None", "NONE", "nOnE"):
            hdr = {"alg": alg, "typ": "JWT"}
            si = signing_input(hdr, payload)
            self.assertRefused(self.srv, si + ".", "alg %s, empty signature" % alg)
            self.assertRefused(self.srv, si + "." + b64url(b"bogus-signature"), "alg %s, bogus signature" % alg)
            self.assertRefused(self.srv, si + "." + real_sig, "alg %s, a real signature of another input" % alg)
        self.assertRefused(self.srv, with_header(real, {"alg": "none"}), "alg none on a signed token")
        # no alg at all, or not a string
        self.assertRefused(self.srv, with_header(real, {"typ": "JWT"}), "no alg")
        self.assertRefused(self.srv, with_header(real, {"alg": None}), "alg null")
        self.assertRefused(self.srv, with_header(real, {"alg": ["RS256"]}), "alg array")

    def test_hs256_with_public_key_pem_refused(self):
        # the classic key-confusion forgery: HMAC keyed with the PEM text of the public key
        for pub in (self.k.rsa_pub, self.k.ec_pub):
            pem = read_bytes(pub)
            for secret in (pem, pem.rstrip(b"\n"), pem.strip()):
                tok = jwt_encode(self.pub_claims(), secret, alg="HS256")
                self.assertRefused(self.srv, tok, "HS256 keyed with %s (%d bytes)" % (os.path.basename(pub), len(secret)))
            # and the DER bytes of the key
            der = openssl("pkey", "-pubin", "-in", pub, "-outform", "DER")
            self.assertRefused(self.srv, jwt_encode(self.pub_claims(), der, alg="HS256"), "HS256 keyed with DER")
            for alg in ("HS384", "HS512"):
                self.assertRefused(self.srv, jwt_encode(self.pub_claims(), pem, alg=alg), alg + " keyed with PEM")

    def test_alg_outside_allow_list_refused(self):
        # correctly made signatures, but with algorithms the key type does not allow
        payload = self.pub_claims()
        self.assertRefused(self.srv, sign_jwt(payload, self.k.rsa, "RS512"), "RS512 with the RSA key")
        self.assertRefused(self.srv, sign_jwt(payload, self.k.rsa, "PS256"), "PS256 with the RSA key")
        # an RS256 signature announced as something else
        rs = sign_jwt(payload, self.k.rsa, "RS256")
        for alg in ("ES256", "HS256", "RS384", "PS256", "rs256"):
            self.assertRefused(self.srv, with_header(rs, {"alg": alg, "typ": "JWT"}), "RS256 signature as %s" % alg)
        es = sign_jwt(payload, self.k.ec, "ES256")
        for alg in ("RS256", "ES384", "es256"):
            self.assertRefused(self.srv, with_header(es, {"alg": alg, "typ": "JWT"}), "ES256 signature as %s" % alg)

    def test_es256_der_signature_refused(self):
        # JWS ES256 signatures are the 64-byte r||s, not DER (RFC 7518 §3.4)
        tok = sign_jwt(self.pub_claims(), self.k.ec, "ES256-DER", header={"alg": "ES256", "typ": "JWT"})
        self.assertRefused(self.srv, tok, "ES256 with a DER signature")
        # and a raw signature with one byte too many or too few
        good = sign_jwt(self.pub_claims(), self.k.ec, "ES256")
        head, _, sig = good.rpartition(".")
        raw = b64url_decode(sig)
        self.assertRefused(self.srv, head + "." + b64url(b"\x00" + raw), "ES256 with 65 bytes")
        self.assertRefused(self.srv, head + "." + b64url(raw[:32] + raw[33:]), "ES256 with 63 bytes")

    def test_foreign_keys_refused(self):
        self.assertRefused(self.srv, sign_jwt(self.pub_claims(), self.k.rsa_other, "RS256"), "another RSA key")
        self.assertRefused(self.srv, sign_jwt(self.pub_claims(), self.k.ec_other, "ES256"), "another EC key")
        self.assertRefused(self.srv, token("--key-file", self.k.rsa_other, "--scope", SCOPE_PUBLISH,
                                           "--scope", SCOPE_SUBSCRIBE, "--org", "ttd"), "hendelse token, other RSA key")

    def test_expired_and_not_yet_valid_refused(self):
        now = int(time.time())
        for key, alg in ((self.k.rsa, "RS256"), (self.k.ec, "ES256")):
            self.assertRefused(self.srv, sign_jwt(self.pub_claims(ttl=-120), key, alg), alg + " expired")
            self.assertRefused(self.srv, sign_jwt(self.pub_claims(nbf=now + 600), key, alg), alg + " nbf ahead")
        # hendelse token's exp is checked too (its --ttl is at least 1 s)
        short = token("--key-file", self.k.ec, "--scope", SCOPE_PUBLISH, "--scope", SCOPE_SUBSCRIBE, "--ttl", "1")
        self.assertLessEqual(jwt_decode(short)[1]["exp"], int(time.time()) + 2)
        time.sleep(2.1)
        self.assertRefused(self.srv, short, "hendelse token after its ttl")

    def test_hs256_without_secret_refused(self):
        # no HS256 secret configured: any HS256 token is refused, whatever its key
        self.assertRefused(self.srv, jwt_encode(self.pub_claims(), "x", alg="HS256"), "HS256, no secret")
        self.assertRefused(self.srv, jwt_encode(self.pub_claims(), "", alg="HS256"), "HS256, empty key")

    def test_scope_still_checked(self):
        # a well-signed token without the scope: authenticated, so 403 and not 401
        tok = sign_jwt(self.pub_claims(scope=SCOPE_SUBSCRIBE), self.k.rsa, "RS256")
        r = self.srv.publish(event(resource=fresh_resource("fidtok")), tok)
        self.assertStatus(r, 403)
        self.assertEqual(r.body, b"")


class SingleKeyTypeTest(TokenTestBase):
    """An RSA-only and an ES256-only server: a token of the other kind is refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rs_srv = cls.start_class_server("--auth", "jwt", "--authz", "allow-all",
                                            "--jwt-public-key-file", cls.k.rsa_pub)
        cls.es_srv = cls.start_class_server("--auth", "jwt", "--authz", "allow-all",
                                            "--jwt-public-key-file", cls.k.ec_pub)

    def test_rs256_only(self):
        self.assertAccepted(self.rs_srv, sign_jwt(self.pub_claims(), self.k.rsa, "RS256"), "RS256 on RS server")
        self.assertRefused(self.rs_srv, sign_jwt(self.pub_claims(), self.k.ec, "ES256"), "ES256 on RS server")
        self.assertRefused(self.rs_srv, token("--key-file", self.k.ec, "--scope", SCOPE_PUBLISH,
                                              "--scope", SCOPE_SUBSCRIBE), "hendelse ES256 token on RS server")
        pem = read_bytes(self.k.rsa_pub)
        self.assertRefused(self.rs_srv, jwt_encode(self.pub_claims(), pem, alg="HS256"), "HS256 with PEM")

    def test_es256_only(self):
        self.assertAccepted(self.es_srv, sign_jwt(self.pub_claims(), self.k.ec, "ES256"), "ES256 on ES server")
        self.assertRefused(self.es_srv, sign_jwt(self.pub_claims(), self.k.rsa, "RS256"), "RS256 on ES server")
        self.assertRefused(self.es_srv, token("--key-file", self.k.rsa, "--scope", SCOPE_PUBLISH,
                                              "--scope", SCOPE_SUBSCRIBE), "hendelse RS256 token on ES server")
        pem = read_bytes(self.k.ec_pub)
        self.assertRefused(self.es_srv, jwt_encode(self.pub_claims(), pem, alg="HS256"), "HS256 with PEM")


class MixedKeysTest(TokenTestBase):
    """An HS256 secret and an RSA public key together: each verifies its own algorithm only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secret_file, cls.secret = new_secret_file(cls.dir)
        cls.srv = cls.start_class_server("--auth", "jwt", "--authz", "allow-all",
                                         "--jwt-hs256-secret-file", cls.secret_file,
                                         "--jwt-public-key-file", cls.k.rsa_pub)

    def test_each_key_its_algorithm(self):
        self.assertAccepted(self.srv, jwt_encode(self.pub_claims(), self.secret, alg="HS256"), "HS256 secret")
        self.assertAccepted(self.srv, sign_jwt(self.pub_claims(), self.k.rsa, "RS256"), "RS256")
        self.assertRefused(self.srv, sign_jwt(self.pub_claims(), self.k.ec, "ES256"), "ES256, no EC key")
        pem = read_bytes(self.k.rsa_pub)
        self.assertRefused(self.srv, jwt_encode(self.pub_claims(), pem, alg="HS256"), "HS256 keyed with the RSA PEM")
        # an RS256-announced token carrying an HMAC made with the HS secret
        hdr = {"alg": "RS256", "typ": "JWT"}
        forged = jwt_encode(self.pub_claims(), self.secret, alg="HS256", header=hdr)
        forged = forged.rsplit(".", 1)[0] + "." + jwt_encode(self.pub_claims(), self.secret).rsplit(".", 1)[1]
        self.assertRefused(self.srv, forged, "RS256 header, HMAC signature")
        import hashlib
        import hmac as _hmac
        si = signing_input(hdr, self.pub_claims())
        forged = si + "." + b64url(_hmac.new(self.secret.encode(), si.encode(), hashlib.sha256).digest())
        self.assertRefused(self.srv, forged, "RS256 header, HMAC of the signing input with the HS secret")
        self.assertRefused(self.srv, with_payload(jwt_encode(self.pub_claims(scope=SCOPE_SUBSCRIBE), self.secret),
                                                  self.pub_claims()), "HS256 changed payload")


class PlatformAccessTokenTest(TokenTestBase):
    """PlatformAccessToken (api.md §1): verified with the same public keys."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.start_class_server("--auth", "jwt", "--authz", "allow-all",
                                         "--jwt-public-key-file", cls.k.rsa_pub,
                                         "--jwt-public-key-file", cls.k.ec_pub)
        # a bearer token that authenticates but lacks the publish scope
        cls.bearer = sign_jwt(claims(scope=SCOPE_SUBSCRIBE, org="ttd"), cls.k.rsa, "RS256")

    def pat_claims(self, **kw):
        now = int(time.time())
        c = {"iss": "ttd", "urn:altinn:app": "fidapp", "iat": now, "exp": now + 3600}
        c.update(kw)
        return c

    def publish(self, pat):
        res = fresh_resource("fidpat")
        ev = event(resource=res)
        h = {} if pat is None else {"PlatformAccessToken": pat}
        r = self.srv.publish(ev, self.bearer, headers=h)
        return r, res, ev

    def assertPublished(self, pat, what):
        r, res, ev = self.publish(pat)
        self.assertEqual(r.status, 200, "%s: %r" % (what, r))
        self.assertEqual(self.assertPollPage(self.srv.poll("resource=%s&after=0" % res, self.bearer)), [ev])

    def assertForbidden(self, pat, what):
        r, res, _ = self.publish(pat)
        self.assertEqual(r.status, 403, "%s: %r" % (what, r))
        self.assertEqual(r.body, b"")
        self.assertEqual(self.assertPollPage(self.srv.poll("resource=%s&after=0" % res, self.bearer)), [],
                         "%s: nothing stored" % what)

    def test_without_pat_forbidden(self):
        self.assertForbidden(None, "no PlatformAccessToken")
        self.assertForbidden("", "empty PlatformAccessToken")

    def test_valid_pat_publishes(self):
        self.assertPublished(token("--key-file", self.k.rsa, "--app", "ttd/fidapp"), "hendelse token RS256 PAT")
        self.assertPublished(token("--key-file", self.k.ec, "--app", "ttd/fidapp"), "hendelse token ES256 PAT")
        self.assertPublished(sign_jwt(self.pat_claims(), self.k.rsa, "RS256"), "openssl RS256 PAT")
        self.assertPublished(sign_jwt(self.pat_claims(), self.k.ec, "ES256"), "openssl ES256 PAT")

    def test_hendelse_token_app_claims(self):
        _, body, _ = jwt_decode(token("--key-file", self.k.ec, "--app", "ttd/fidapp"))
        self.assertEqual(body.get("iss"), "ttd")
        self.assertEqual(body.get("urn:altinn:app"), "fidapp")

    def test_forged_pat_forbidden(self):
        good = sign_jwt(self.pat_claims(), self.k.rsa, "RS256")
        self.assertForbidden(with_payload(good, self.pat_claims(iss="skd")), "PAT with a changed payload")
        es = sign_jwt(self.pat_claims(), self.k.ec, "ES256")
        self.assertForbidden(with_payload(es, self.pat_claims(**{"urn:altinn:app": "other"})),
                             "ES256 PAT with a changed payload")
        si = signing_input({"alg": "none", "typ": "JWT"}, self.pat_claims())
        self.assertForbidden(si + ".", "PAT alg none, empty signature")
        self.assertForbidden(si + "." + b64url(b"bogus"), "PAT alg none, bogus signature")
        self.assertForbidden(jwt_encode(self.pat_claims(), read_bytes(self.k.rsa_pub), alg="HS256"),
                             "PAT HS256 keyed with the RSA PEM")
        self.assertForbidden(jwt_encode(self.pat_claims(), read_bytes(self.k.ec_pub), alg="HS256"),
                             "PAT HS256 keyed with the EC PEM")
        self.assertForbidden(sign_jwt(self.pat_claims(), self.k.rsa_other, "RS256"), "PAT from another key")
        self.assertForbidden(token("--app", "ttd/fidapp"), "PAT signed with a random key")
        self.assertForbidden(sign_jwt(self.pat_claims(exp=int(time.time()) - 120), self.k.rsa, "RS256"),
                             "expired PAT")
        self.assertForbidden("garbage", "PAT not a JWT")

    def test_pat_needs_iss_and_app(self):
        c = self.pat_claims()
        del c["urn:altinn:app"]
        self.assertForbidden(sign_jwt(c, self.k.rsa, "RS256"), "PAT without urn:altinn:app")
        c = self.pat_claims()
        del c["iss"]
        self.assertForbidden(sign_jwt(c, self.k.rsa, "RS256"), "PAT without iss")
        # an ordinary bearer token in the header is no PlatformAccessToken
        self.assertForbidden(sign_jwt(claims(scope=SCOPE_PUBLISH, org="ttd"), self.k.rsa, "RS256"),
                             "an ordinary token as PAT")

    def test_bearer_still_verified(self):
        # a valid PAT does not excuse a forged bearer token
        pat = token("--key-file", self.k.rsa, "--app", "ttd/fidapp")
        forged = with_payload(self.bearer, claims(scope=SCOPE_PUBLISH, org="ttd"))
        r = self.srv.publish(event(resource=fresh_resource("fidpat")), forged, headers={"PlatformAccessToken": pat})
        self.assertStatus(r, 401)
        r = self.srv.publish(event(resource=fresh_resource("fidpat")), None, headers={"PlatformAccessToken": pat})
        self.assertStatus(r, 401)


class KeyFileStartupTest(TokenTestBase):
    """Public key files the server cannot use stop start-up: one line on stderr, exit status 2."""

    def serve(self, *args):
        d = tempfile.mkdtemp(dir=self.dir)
        return run_cli("serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"),
                       "--auth", "jwt", "--authz", "allow-all", *args, timeout=10)

    def assertStartFails(self, *args):
        code, out, err = self.serve(*args)
        self.assertEqual(code, 2, "serve %s: exit %r, stdout %r, stderr %r" % (" ".join(args), code, out, err))
        self.assertNotIn("listening", out)
        self.assertEqual(len(err.strip().splitlines()), 1, "one line on stderr: %r" % err)

    def test_unusable_public_keys(self):
        d = tempfile.mkdtemp(dir=self.dir)
        _, small = gen_key(d, "rsa1024", "rsa1024")
        _, p384 = gen_key(d, "p384", "p384")
        garbage = os.path.join(d, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n")
        self.assertStartFails("--jwt-public-key-file", small)
        self.assertStartFails("--jwt-public-key-file", p384)
        self.assertStartFails("--jwt-public-key-file", garbage)
        self.assertStartFails("--jwt-public-key-file", os.path.join(d, "missing.pem"))
        # a good key next to a bad one does not make the bad one acceptable
        self.assertStartFails("--jwt-public-key-file", self.k.rsa_pub, "--jwt-public-key-file", small)


if __name__ == "__main__":
    unittest.main()
