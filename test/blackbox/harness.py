"""Black-box test harness for hendelse: starts the real binary, speaks HTTP to it.

Python 3 standard library only. Every test file imports this module (it lives next to them), so each
file runs alone as `python3 test/blackbox/test_x.py`.

The binary comes from the environment variable HENDELSE_BIN, else build/server/hendelse relative to
the repository root.
"""

import atexit
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

READY_RE = re.compile(r"^hendelse listening on (https?)://127\.0\.0\.1:(\d+)$")
READY_TIMEOUT = 10.0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

PUBLISH_PATH = "/events/api/v1/events"
POLL_PATH = "/events/api/v1/events"
CE_JSON = "application/cloudevents+json"
POLL_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
PROBLEM_JSON = "application/problem+json"
VALIDATION_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
VALIDATION_TITLE = "One or more validation errors occurred."

SCOPE_PUBLISH = "altinn:events.publish"
SCOPE_PUBLISH_ADMIN = "altinn:events.publish.admin"
SCOPE_SUBSCRIBE = "altinn:events.subscribe"

SUBS_PATH = "/events/api/v1/subscriptions"
# Receiver timestamps are taken in the receiver's handler threads, which a loaded machine may run
# late for one request and not the next: a measured gap may be this much shorter than the real one.
TIMING_SLACK = 0.02
SUBS_CONTENT_TYPE = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"

DEFAULT_SOURCE = "https://example.com/src"
DEFAULT_TYPE = "test.created"
DEFAULT_RESOURCE = "urn:altinn:resource:test-resource"


def binary():
    """Path of the hendelse binary under test."""
    path = os.environ.get("HENDELSE_BIN")
    if not path:
        path = os.path.join(REPO_ROOT, "build", "server", "hendelse")
    return path


# --------------------------------------------------------------------------------------------------
# CloudEvents and resources


def event(**overrides):
    """A valid CloudEvent dict with a fresh uuid id. An override with value None removes the key."""
    ev = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": DEFAULT_SOURCE,
        "type": DEFAULT_TYPE,
        "resource": DEFAULT_RESOURCE,
    }
    for k, v in overrides.items():
        if v is None:
            ev.pop(k, None)
        else:
            ev[k] = v
    return ev


def fresh_resource(prefix="bb"):
    """A resource URN nobody else uses, so tests sharing one server do not see each other's events."""
    return "urn:altinn:resource:%s-%s" % (prefix, uuid.uuid4().hex[:16])


# --------------------------------------------------------------------------------------------------
# JWT (HS256) in pure Python, independent of the binary


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def jwt_encode(claims, secret, alg="HS256", header=None, signature=None):
    """Signs claims (a dict) as a JWT. alg picks the HMAC hash (HS256/HS384/HS512) or "none" (empty
    signature). header replaces the header dict; signature (str) replaces the computed signature."""
    if isinstance(secret, str):
        secret = secret.encode()
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(hdr, separators=(",", ":"))) + "." + b64url(
        json.dumps(claims, separators=(",", ":"))
    )
    if signature is None:
        hashes = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
        if alg in hashes:
            signature = b64url(hmac.new(secret, signing_input.encode("ascii"), hashes[alg]).digest())
        else:
            signature = ""
    return signing_input + "." + signature


def jwt_decode(token):
    """(header dict, claims dict, signature bytes) of a compact JWT; no verification."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWT: %r" % token)
    return (
        json.loads(b64url_decode(parts[0])),
        json.loads(b64url_decode(parts[1])),
        b64url_decode(parts[2]),
    )


def jwt_verify_hs256(token, secret):
    if isinstance(secret, str):
        secret = secret.encode()
    head, _, sig = token.rpartition(".")
    want = b64url(hmac.new(secret, head.encode("ascii"), hashlib.sha256).digest())
    return hmac.compare_digest(want, sig)


def claims(scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd", ttl=3600, **extra):
    """A claims dict: scope, urn:altinn:org, iat, exp. Pass scope=None/org=None to leave them out."""
    now = int(time.time())
    c = {"iat": now, "exp": now + ttl}
    if scope is not None:
        c["scope"] = scope
    if org is not None:
        c["urn:altinn:org"] = org
    c.update(extra)
    return c


def make_token(secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd", ttl=3600, alg="HS256",
               **extra):
    return jwt_encode(claims(scope=scope, org=org, ttl=ttl, **extra), secret, alg=alg)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def new_secret_file(directory):
    """Writes a random HS256 secret (no trailing newline) to a file in directory; returns (path, secret)."""
    secret = "bb-" + uuid.uuid4().hex + uuid.uuid4().hex
    path = os.path.join(directory, "jwt-secret-%s" % uuid.uuid4().hex[:8])
    with open(path, "w") as f:
        f.write(secret)
    return path, secret


def run_cli(*args, timeout=15, env=None):
    """Runs `hendelse ARGS...` to completion: (exit code, stdout str, stderr str). A process still
    running after timeout is killed and reported as exit code None."""
    proc = subprocess.Popen([binary()] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def token(*args):
    """Runs `hendelse token ARGS...` and returns the token (stdout stripped); raises on failure."""
    code, out, err = run_cli("token", *args)
    if code != 0:
        raise AssertionError("hendelse token %s exited %r; stderr: %s" % (" ".join(args), code, err))
    return out.strip()


def sanitizer_report(text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


# --------------------------------------------------------------------------------------------------
# HTTP


def _encode_body(body, headers):
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", CE_JSON)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body


def _collect_headers(resp):
    out = {}
    for k, v in resp.getheaders():
        k = k.lower()
        out[k] = out[k] + ", " + v if k in out else v
    return out


class Response(tuple):
    """(status, headers, body) with conveniences; unpacks like a 3-tuple."""

    def __new__(cls, status, headers, body):
        return tuple.__new__(cls, (status, headers, body))

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])

    def json(self):
        return json.loads(self[2].decode("utf-8"))

    def __repr__(self):
        body = self[2]
        if len(body) > 600:
            body = body[:600] + b"..."
        return "<Response %d %r %r>" % (self[0], self[1], body)


def _do_request(conn, method, path, body, headers):
    headers = dict(headers or {})
    data = _encode_body(body, headers)
    if data is not None and not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(len(data))
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    return Response(resp.status, _collect_headers(resp), payload), resp


class Conn:
    """A keep-alive HTTP connection to a server. request() has the same signature as Server.request.
    Reconnects transparently when the server closed the connection between requests (retry=True)."""

    def __init__(self, port, timeout=30):
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, retry=True):
        try:
            resp, raw = _do_request(self.conn, method, path, body, headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                http.client.CannotSendRequest, http.client.ResponseNotReady):
            self.conn.close()
            if not retry:
                raise
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            resp, raw = _do_request(self.conn, method, path, body, headers)
        if raw.will_close:
            self.conn.close()
        return resp

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------------
# The server process


class ServerStartError(AssertionError):
    pass


_live_servers = []


@atexit.register
def _kill_leftovers():
    """Kills servers a failed setUpClass (or an interrupted run) left behind and removes their dirs."""
    for srv in list(_live_servers):
        try:
            if srv.running():
                srv.proc.kill()
                srv.proc.wait()
        except Exception:
            pass
        shutil.rmtree(srv._own_tmp, ignore_errors=True)


class Server:
    """One `hendelse serve` process on 127.0.0.1:0 with its own (or a given) data directory.

    stderr goes to a file; check_sanitizer() raises AssertionError when it holds a sanitizer report.
    """

    def __init__(self, *extra_args, data_dir=None, start=True):
        self.extra_args = [str(a) for a in extra_args]
        self._own_tmp = tempfile.mkdtemp(prefix="hendelse-bb-")
        self.data_dir = data_dir or os.path.join(self._own_tmp, "data")
        self.proc = None
        self.port = None
        self.scheme = "http"
        self.base_url = None
        self.ready_line = None
        self.generation = 0
        self.stderr_paths = []
        self.stdout_extra = []
        self._stdout_thread = None
        self._conn = None
        _live_servers.append(self)
        if start:
            self.start()

    # lifecycle ------------------------------------------------------------------------------

    def argv(self):
        return [binary(), "serve", "--listen", "127.0.0.1:0", "--data", self.data_dir] + self.extra_args

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        self.generation += 1
        stderr_path = os.path.join(self._own_tmp, "stderr-%d.log" % self.generation)
        self.stderr_paths.append(stderr_path)
        errf = open(stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errf)
        finally:
            errf.close()
        line = self._read_ready_line()
        m = READY_RE.match(line)
        if not m:
            self._abort_start("first line on stdout is not the ready line: %r" % line)
        self.ready_line = line
        self.scheme = m.group(1)
        self.port = int(m.group(2))
        self.base_url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self._conn = None
        # Drain anything else printed to stdout so the server never blocks on a full pipe.
        self._stdout_thread = threading.Thread(target=self._drain_stdout, args=(self.proc,), daemon=True)
        self._stdout_thread.start()
        return self

    def _read_ready_line(self):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READY_TIMEOUT
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort_start("no ready line within %.0f s (stdout so far: %r)" % (READY_TIMEOUT, buf))
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    self._abort_start("exited with code %r before the ready line (stdout: %r)"
                                      % (self.proc.returncode, buf))
                buf += chunk
        line, _, rest = buf.partition(b"\n")
        if rest:
            self.stdout_extra.append(rest)
        return line.decode("utf-8", "replace").rstrip("\r")

    def _abort_start(self, why):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        raise ServerStartError("hendelse serve %s\n  argv: %s\n  stderr:\n%s"
                               % (why, " ".join(self.argv()), self.stderr_text()))

    def _drain_stdout(self, proc):
        try:
            while True:
                chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
                if not chunk:
                    break
                self.stdout_extra.append(chunk)
        except (ValueError, OSError):
            pass

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _reap(self):
        if self._stdout_thread is not None:
            self._stdout_thread.join(timeout=5)
            self._stdout_thread = None
        if self.proc is not None and self.proc.stdout:
            try:
                self.proc.stdout.close()
            except OSError:
                pass

    def signal(self, signum, timeout=15):
        """Sends signum and waits for the exit; returns the exit code. Kills (and fails) on timeout."""
        self._close_conn()
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reap()
            raise AssertionError("server did not exit within %d s of signal %d" % (timeout, signum))
        self._reap()
        return code

    def stop(self, timeout=15):
        """SIGTERM, wait, return the exit code."""
        return self.signal(signal.SIGTERM, timeout)

    def kill9(self):
        self._close_conn()
        if self.running():
            self.proc.kill()
            self.proc.wait()
        self._reap()
        return self.proc.returncode

    def restart(self, *, sigkill=False):
        """Stops the server (SIGTERM, or SIGKILL) if running and starts it again on the same data dir.
        Returns the exit code of the stop (None if it was not running)."""
        code = None
        if self.running():
            code = self.kill9() if sigkill else self.stop()
        self.start()
        return code

    def cleanup(self):
        """Stops the process if needed and removes the temporary directory. Raises AssertionError if
        stderr held a sanitizer report (checked before the files go)."""
        try:
            if self.running():
                try:
                    self.stop()
                except AssertionError:
                    pass
            self._close_conn()
            self._reap()
            self.check_sanitizer()
        finally:
            shutil.rmtree(self._own_tmp, ignore_errors=True)
            if self in _live_servers:
                _live_servers.remove(self)

    # stderr ---------------------------------------------------------------------------------

    def stderr_text(self, all_generations=True):
        paths = self.stderr_paths if all_generations else self.stderr_paths[-1:]
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def check_sanitizer(self):
        text = self.stderr_text()
        marker = sanitizer_report(text)
        if marker:
            idx = text.find(marker)
            raise AssertionError("sanitizer report (%r) in server stderr:\n%s"
                                 % (marker, text[max(0, idx - 2000):idx + 6000]))

    # HTTP -----------------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on a fresh connection: (status, headers with lower-cased keys, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            resp, _ = _do_request(conn, method, path, body, headers)
            return resp
        finally:
            conn.close()

    def connection(self, timeout=30):
        """A new keep-alive connection (Conn); the caller closes it."""
        return Conn(self.port, timeout=timeout)

    def keepalive_request(self, method, path, body=None, headers=None):
        """A request over this object's shared keep-alive connection (reopened after a restart)."""
        if self._conn is None:
            self._conn = Conn(self.port)
        return self._conn.request(method, path, body, headers)

    # API helpers ----------------------------------------------------------------------------

    def publish(self, ev, tok=None, content_type=CE_JSON, headers=None, conn=None):
        h = {"Content-Type": content_type} if content_type is not None else {}
        if tok is not None:
            h.update(bearer(tok))
        h.update(headers or {})
        body = ev if isinstance(ev, (bytes, str)) else json.dumps(ev)
        if conn is not None:
            return conn.request("POST", PUBLISH_PATH, body, h)
        return self.keepalive_request("POST", PUBLISH_PATH, body, h)

    def poll(self, query, tok=None, headers=None, conn=None):
        """GET /events/api/v1/events?{query}; query is a raw (already encoded) query string or a list
        of (name, value) pairs (values used verbatim, so pass only URL-safe text)."""
        if not isinstance(query, str):
            query = "&".join("%s=%s" % (k, v) for k, v in query)
        h = {}
        if tok is not None:
            h.update(bearer(tok))
        h.update(headers or {})
        path = POLL_PATH + ("?" + query if query else "")
        if conn is not None:
            return conn.request("GET", path, None, h)
        return self.keepalive_request("GET", path, None, h)

    def path_of(self, url):
        """The path+query of a `next` link that must point at this server's base URL."""
        if not url.startswith(self.base_url + "/"):
            raise AssertionError("link %r does not start with base URL %r" % (url, self.base_url))
        return url[len(self.base_url):]

    def poll_all(self, query, tok=None, headers=None, max_pages=10000, base_url=None):
        """Follows `next` links from the first page until a page without `next`. Returns (events, pages)
        where pages is the list of Responses. Fails if a non-final page lacks a valid link."""
        base = base_url or self.base_url
        resp = self.poll(query, tok, headers)
        pages = [resp]
        events = []
        for _ in range(max_pages):
            if resp.status != 200:
                raise AssertionError("poll page failed: %r" % (resp,))
            page = resp.json()
            events.extend(page)
            nxt = resp.headers.get("next")
            if nxt is None:
                return events, pages
            if not nxt.startswith(base + "/"):
                raise AssertionError("next link %r does not start with %r" % (nxt, base))
            h = {}
            if tok is not None:
                h.update(bearer(tok))
            resp = self.keepalive_request("GET", nxt[len(base):], None, h)
            pages.append(resp)
        raise AssertionError("more than %d pages" % max_pages)

    # subscriptions (api.md §4) ------------------------------------------------------------------

    def _auth_headers(self, tok, headers=None):
        h = {}
        if tok is not None:
            h.update(bearer(tok))
        h.update(headers or {})
        return h

    def create_subscription(self, body, tok=None, content_type=SUBS_CONTENT_TYPE, headers=None):
        """POST /events/api/v1/subscriptions. body: a dict (sent as JSON), or str/bytes sent verbatim."""
        h = {"Content-Type": content_type} if content_type is not None else {}
        h.update(self._auth_headers(tok, headers))
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return self.request("POST", SUBS_PATH, data, h)

    def get_subscription(self, sub_id, tok=None):
        return self.request("GET", "%s/%s" % (SUBS_PATH, sub_id), None, self._auth_headers(tok))

    def list_subscriptions(self, tok=None):
        return self.request("GET", SUBS_PATH, None, self._auth_headers(tok))

    def delete_subscription(self, sub_id, tok=None):
        return self.request("DELETE", "%s/%s" % (SUBS_PATH, sub_id), None, self._auth_headers(tok))

    def deadletters(self, sub_id, tok=None):
        """GET /events/api/v1/subscriptions/{id}/deadletters (extension)."""
        return self.request("GET", "%s/%s/deadletters" % (SUBS_PATH, sub_id), None, self._auth_headers(tok))

    def redeliver(self, sub_id, tok=None):
        """POST /events/api/v1/subscriptions/{id}/deadletters/redeliver (extension)."""
        return self.request("POST", "%s/%s/deadletters/redeliver" % (SUBS_PATH, sub_id), None,
                            self._auth_headers(tok))

    def wait_validated(self, sub_id, tok=None, timeout=10.0):
        """Polls GET .../{id} until validated is true or timeout; returns the last subscription JSON
        (the caller asserts)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get_subscription(sub_id, tok)
            doc = r.json() if r.status == 200 else None
            if (doc and doc.get("validated") is True) or time.monotonic() >= deadline:
                return doc
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def publish_many(srv, events, tok=None, threads=8):
    """Publishes events concurrently over keep-alive connections; returns the list of statuses in
    input order. Use for bulk setup where the store order does not matter."""
    statuses = [None] * len(events)
    idx = {"next": 0}
    lock = threading.Lock()
    errors = []

    def worker():
        conn = srv.connection()
        try:
            while True:
                with lock:
                    i = idx["next"]
                    if i >= len(events):
                        return
                    idx["next"] = i + 1
                statuses[i] = srv.publish(events[i], tok, conn=conn).status
        except Exception as e:  # reported by the caller
            errors.append(e)
        finally:
            conn.close()

    ts = [threading.Thread(target=worker) for _ in range(max(1, min(threads, len(events))))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return statuses


def raw_send(port, data, read=True, timeout=3.0, half_close=True):
    """Sends raw bytes on a new socket, optionally reads what comes back until close/timeout
    (after shutting down the write side, unless half_close is False)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        s.sendall(data)
        if read:
            if half_close:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            while True:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                got += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()
    return got


# --------------------------------------------------------------------------------------------------
# unittest base class


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


class BBTestCase(unittest.TestCase):
    """Base class: servers made with start_server() (per test) or start_class_server() (per class)
    are stopped at the end and their stderr checked for sanitizer reports; a class server is also
    checked after every test so the failing test is the one named."""

    maxDiff = None
    _class_servers = ()

    @classmethod
    def start_class_server(cls, *args, **kw):
        srv = Server(*args, **kw)
        if not cls.__dict__.get("_class_servers"):
            cls._class_servers = []
        cls._class_servers.append(srv)
        return srv

    @classmethod
    def tearDownClass(cls):
        errors = []
        for srv in cls.__dict__.get("_class_servers") or ():
            try:
                srv.cleanup()
            except AssertionError as e:
                errors.append(e)
        cls._class_servers = []
        if errors:
            raise errors[0]

    def start_server(self, *args, **kw):
        srv = Server(*args, **kw)
        self.addCleanup(srv.cleanup)
        return srv

    def tearDown(self):
        for srv in type(self).__dict__.get("_class_servers") or ():
            srv.check_sanitizer()

    # assertions -----------------------------------------------------------------------------

    def assertStatus(self, resp, status):
        self.assertEqual(resp.status, status, "unexpected status: %r" % (resp,))

    def assertEmptyBody(self, resp):
        self.assertEqual(resp.body, b"", "body should be empty: %r" % (resp,))

    def assertProblemJson(self, resp, status):
        self.assertStatus(resp, status)
        self.assertEqual(media_type(resp.headers.get("content-type")), PROBLEM_JSON,
                         "problem responses have Content-Type application/problem+json: %r" % (resp,))
        try:
            body = resp.json()
        except ValueError:
            self.fail("problem body is not JSON: %r" % (resp,))
        self.assertIsInstance(body, dict, "problem body is not a JSON object: %r" % (resp,))
        return body

    def assertValidationProblem(self, resp, message=None, key="RequestBody"):
        """400 {"type":...,"title":"One or more validation errors occurred.","status":400,
        "errors":{key:[<one non-empty string>]}}; returns the message."""
        body = self.assertProblemJson(resp, 400)
        self.assertEqual(set(body), {"type", "title", "status", "errors"}, "problem keys: %r" % (body,))
        self.assertEqual(body["type"], VALIDATION_TYPE)
        self.assertEqual(body["title"], VALIDATION_TITLE)
        self.assertEqual(body["status"], 400)
        self.assertIsInstance(body["errors"], dict)
        self.assertEqual(list(body["errors"]), [key], "errors keys: %r" % (body,))
        msgs = body["errors"][key]
        self.assertIsInstance(msgs, list)
        self.assertEqual(len(msgs), 1, "exactly one message: %r" % (body,))
        self.assertIsInstance(msgs[0], str)
        self.assertTrue(msgs[0].strip(), "message must not be empty: %r" % (body,))
        if message is not None:
            self.assertEqual(msgs[0], message)
        return msgs[0]

    def assertDetailProblem(self, resp, detail, title="Bad Request"):
        body = self.assertProblemJson(resp, 400)
        self.assertEqual(body, {"type": VALIDATION_TYPE, "title": title, "status": 400, "detail": detail})

    def assertPollPage(self, resp):
        """200 with the exact poll Content-Type and a JSON array body; returns the list."""
        self.assertStatus(resp, 200)
        self.assertEqual(resp.headers.get("content-type"), POLL_CONTENT_TYPE, repr(resp))
        body = resp.json()
        self.assertIsInstance(body, list)
        return body


def wait_until(fn, timeout=10.0, interval=0.05):
    """Calls fn() until it returns something truthy or timeout seconds passed; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# Standard Webhooks signatures (subscription extension signingSecret), computed independently


def new_signing_secret(nbytes=32):
    """A signingSecret: "whsec_" + base64 of nbytes random bytes. Returns (secret str, key bytes)."""
    key = os.urandom(nbytes)
    return "whsec_" + base64.b64encode(key).decode("ascii"), key


def webhook_signature(key, msg_id, timestamp, body):
    """The Standard Webhooks v1 signature ("v1," + base64 HMAC-SHA256 of "id.timestamp.body" with the
    key bytes) of one request. body is bytes."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    signed = ("%s.%s." % (msg_id, timestamp)).encode("utf-8") + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
