"""Webhook receivers for the black-box tests: real HTTP(S) servers that record every request.

Python 3 standard library only. A Receiver is a ThreadingHTTPServer on 127.0.0.1, port 0, speaking
HTTP/1.1 with keep-alive (so the server's connection pool is exercised). Every request is recorded
(method, path, headers, body, arrival time on time.monotonic()) before it is answered. What it answers is
configurable per path: a script of Answers consumed in order, then a default Answer; an Answer is a
status, a delay, a hang (no answer until released or the receiver closes), or a redirect.

make_pki(directory) runs the `openssl` command to make a throw-away CA and a server certificate for
127.0.0.1 and localhost; Receiver(tls=pki) serves https with it.
"""

import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid

HANDSHAKE_TYPE = "platform.events.validatesubscription"


# --------------------------------------------------------------------------------------------------
# answers and recorded requests


class Answer:
    """How a receiver answers one request.

    status: HTTP status; delay: seconds to wait before answering; hang: never answer (until release()
    or close()), then drop the connection; location: a Location header (for redirects); body: bytes;
    close: drop the connection without any answer; close_after: answer (keep-alive, no Connection
    header) and then close the connection anyway, as an idle timeout would; chunked: send the body with
    Transfer-Encoding: chunked instead of Content-Length.

    Bad receivers (test_bad_receivers.py): reset: abort the connection with a TCP RST instead of
    answering; raw: send these bytes instead of an HTTP response, then close; trickle: send the
    response one byte at a time, this many seconds apart; stream: answer status with a Content-Length
    (or, with chunked, a chunked) body of this many zero bytes, streamed (for huge bodies; the
    receiver stops when the peer goes)."""

    def __init__(self, status=200, delay=0.0, hang=False, location=None, body=b"", close=False,
                 headers=None, close_after=False, chunked=False, reset=False, raw=None, trickle=0.0,
                 stream=0):
        self.status = status
        self.delay = delay
        self.hang = hang
        self.location = location
        self.body = body if isinstance(body, bytes) else str(body).encode("utf-8")
        self.close = close
        self.headers = dict(headers or {})
        self.close_after = close_after
        self.chunked = chunked
        self.reset = reset
        self.raw = raw
        self.trickle = trickle
        self.stream = stream

    def __repr__(self):
        return "<Answer %d delay=%s hang=%s location=%r close=%s>" % (
            self.status, self.delay, self.hang, self.location, self.close)


OK = Answer(200)


class Request:
    """One request as the receiver saw it."""

    def __init__(self, method, path, version, headers, raw_headers, body, t, answer=None):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers          # lower-cased names -> value (repeated names joined with ", ")
        self.raw_headers = raw_headers  # list of (name, value) as sent
        self.body = body
        self.t = t                      # time.monotonic() when the whole request had arrived
        self.answer = answer            # the Answer given (None until decided)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def is_handshake(self):
        try:
            doc = self.json()
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("type") == HANDSHAKE_TYPE

    def __repr__(self):
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return "<Request %s %s t=%.3f %r>" % (self.method, self.path, self.t, body)


# --------------------------------------------------------------------------------------------------
# the HTTP server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bb-receiver/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                out += self.rfile.read(size)
                self.rfile.readline(65537)  # CRLF after the chunk
            return out
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        recv = self.server.receiver
        body = self._read_body()
        t = time.monotonic()
        headers = {}
        raw = []
        for k, v in self.headers.items():
            raw.append((k, v))
            lk = k.lower()
            headers[lk] = headers[lk] + ", " + v if lk in headers else v
        req = Request(self.command, self.path, self.request_version, headers, raw, body, t)
        answer = recv._record(req)
        if answer.hang:
            recv._hang_released(req).wait()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if answer.delay:
            if recv._closing.wait(answer.delay):
                self.close_connection = True
                return
        if answer.close:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if answer.reset or answer.raw is not None or answer.trickle or answer.stream:
            self._misbehave(answer)
            return
        try:
            self.send_response(answer.status)
            if answer.location is not None:
                self.send_header("Location", answer.location)
            for k, v in answer.headers.items():
                self.send_header(k, v)
            if answer.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.chunked:
                step = 7919
                for i in range(0, len(answer.body), step):
                    part = answer.body[i:i + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            elif answer.body and self.command != "HEAD":
                self.wfile.write(answer.body)
            self.wfile.flush()
            if answer.close_after:
                self.close_connection = True
        except OSError:
            self.close_connection = True

    def _misbehave(self, answer):
        """The bad-receiver answers; the connection is not reused afterwards."""
        self.close_connection = True
        recv = self.server.receiver
        try:
            if answer.reset:
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
                return
            if answer.raw is not None:
                self.wfile.write(answer.raw)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if answer.chunked:
                head = ("HTTP/1.1 %d Whatever\r\nTransfer-Encoding: chunked\r\n\r\n"
                        % answer.status).encode("ascii")
            else:
                head = ("HTTP/1.1 %d Whatever\r\nContent-Length: %d\r\n\r\n"
                        % (answer.status, answer.stream or len(answer.body))).encode("ascii")
            if answer.trickle:
                for b in head + answer.body:
                    if recv._closing.wait(answer.trickle):
                        return
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                return
            self.wfile.write(head)
            left = answer.stream
            block = b"\0" * 65536
            while left > 0 and not recv._closing.is_set():
                n = min(left, len(block))
                if answer.chunked:
                    self.wfile.write(b"%x\r\n" % n + block[:n] + b"\r\n")
                else:
                    self.wfile.write(block[:n])
                left -= n
                recv._streamed(n)
            if answer.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, receiver, ssl_ctx):
        self.receiver = receiver
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake happens in the per-connection thread, so a client that fails it (or stalls)
        # never blocks the accept loop.
        if self.ssl_ctx is not None:
            try:
                request.settimeout(10)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                self.receiver._tls_failure(e)
                try:
                    request.close()
                except OSError:
                    pass
                return
        self.receiver._connection_opened(request)
        try:
            super().finish_request(request, client_address)
        finally:
            self.receiver._connection_closed(request)
            if self.ssl_ctx is not None:
                try:
                    request.close()  # the TLS wrapper; socketserver closes only the raw socket
                except OSError:
                    pass

    def handle_error(self, request, client_address):  # connection resets etc.: not test failures
        pass


class Receiver:
    """A recording webhook receiver. Use as a context manager or call close().

    url(path) gives the endpoint URL (http://127.0.0.1:PORT/path, or https:// with tls=pki;
    host="localhost" for a name instead of the address)."""

    def __init__(self, tls=None, host="127.0.0.1"):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self._scripts = {}       # path (without query) -> list of Answers still to give
        self._defaults = {}      # path -> Answer
        self._default = OK
        self._closing = threading.Event()
        self._hang_event = threading.Event()
        self.tls_failures = []
        self.connections = 0
        self.streamed = 0        # body bytes sent by Answer(stream=N)
        self._open = set()       # sockets of connections being served (closed by close())
        ssl_ctx = None
        if tls is not None:
            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.load_cert_chain(tls["cert"], tls["key"])
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self, ssl_ctx)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # configuration ---------------------------------------------------------------------------

    def url(self, path="/hook", host=None):
        if not path.startswith("/"):
            path = "/" + path
        return "%s://%s:%d%s" % (self.scheme, host or self.host, self.port, path)

    def unique_path(self, prefix="hook"):
        return "/%s-%s" % (prefix, uuid.uuid4().hex[:12])

    def script(self, path, answers, default=None):
        """Answers for requests on path (query string ignored): the given ones in order, then default
        (if given) or whatever default was set for the path before."""
        with self._lock:
            self._scripts[_strip_query(path)] = list(answers)
            if default is not None:
                self._defaults[_strip_query(path)] = default

    def set_default(self, answer, path=None):
        """The answer once a path's script is used up (for one path, or for every path)."""
        with self._lock:
            if path is None:
                self._default = answer
            else:
                self._defaults[_strip_query(path)] = answer

    def handshake_then(self, path, event_answer, handshake_answer=OK):
        """Answers handshakes on path with handshake_answer and everything else with event_answer
        (on top of any script, which still comes first)."""
        with self._lock:
            self._defaults[_strip_query(path)] = _ByKind(handshake_answer, event_answer)

    def release_hangs(self):
        """Lets every hanging request return (their connections are dropped without an answer)."""
        self._hang_event.set()

    # recording -------------------------------------------------------------------------------

    def _record(self, req):
        with self._cond:
            key = _strip_query(req.path)
            script = self._scripts.get(key)
            if script:
                answer = script.pop(0)
            else:
                answer = self._defaults.get(key, self._default)
            if isinstance(answer, _ByKind):
                answer = answer.pick(req)
            req.answer = answer
            self._requests.append(req)
            self._cond.notify_all()
            return answer

    def _hang_released(self, req):
        return _AnyEvent(self._hang_event, self._closing)

    def _streamed(self, n):
        with self._lock:
            self.streamed += n

    def use_certificate(self, cert, key):
        """Serves https with another certificate from now on (new handshakes) and drops the open
        connections, so that kept-alive ones with the old certificate are not reused."""
        self._httpd.ssl_ctx.load_cert_chain(cert, key)
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            _drop(sock)

    def _tls_failure(self, e):
        with self._cond:
            self.tls_failures.append(e)
            self._cond.notify_all()

    def _connection_opened(self, sock):
        with self._cond:
            self.connections += 1
            self._open.add(sock)
        if self._closing.is_set():
            _drop(sock)

    def _connection_closed(self, sock):
        with self._cond:
            self._open.discard(sock)

    def requests(self, path=None, kind=None):
        """Copy of the recorded requests, optionally only those on path (query ignored) and only of a
        kind: "handshake" or "event" (every non-handshake request)."""
        with self._lock:
            reqs = list(self._requests)
        return _select(reqs, path, kind)

    def handshakes(self, path=None):
        return self.requests(path, "handshake")

    def events(self, path=None):
        return self.requests(path, "event")

    def wait_for(self, count, path=None, kind=None, timeout=10.0, pred=None):
        """Waits until at least count requests (on path, of kind, satisfying pred) arrived or timeout
        seconds passed; returns the matching requests either way (the caller asserts)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = _select(list(self._requests), path, kind)
                if pred is not None:
                    got = [r for r in got if pred(r)]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(min(left, 0.2))

    def wait_event_ids(self, ids, path=None, timeout=10.0):
        """Waits until an event with every id in ids arrived (on path); returns the set still missing."""
        ids = set(ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = set()
                for r in _select(list(self._requests), path, "event"):
                    try:
                        doc = r.json()
                    except ValueError:
                        continue
                    if isinstance(doc, dict):
                        seen.add(doc.get("id"))
                missing = ids - seen
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(min(left, 0.2))

    def clear(self):
        with self._lock:
            self._requests = []

    # lifecycle -------------------------------------------------------------------------------

    def close(self):
        self._closing.set()
        self._hang_event.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        # keep-alive connections would otherwise go on being served after close()
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            _drop(sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ByKind:
    def __init__(self, handshake_answer, event_answer):
        self.handshake_answer = handshake_answer
        self.event_answer = event_answer

    def pick(self, req):
        return self.handshake_answer if req.is_handshake() else self.event_answer


class _AnyEvent:
    def __init__(self, *events):
        self.events = events

    def wait(self):
        while not any(e.is_set() for e in self.events):
            self.events[0].wait(0.05)


def _drop(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _strip_query(path):
    return path.split("?", 1)[0]


def _select(reqs, path, kind):
    if path is not None:
        p = _strip_query(path)
        reqs = [r for r in reqs if _strip_query(r.path) == p]
    if kind == "handshake":
        reqs = [r for r in reqs if r.is_handshake()]
    elif kind == "event":
        reqs = [r for r in reqs if not r.is_handshake()]
    elif kind is not None:
        raise ValueError("kind must be handshake, event or None")
    return reqs


# --------------------------------------------------------------------------------------------------
# throw-away PKI with the openssl command


def _openssl(*args, cwd):
    proc = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(args), proc.returncode,
                                                          proc.stderr.decode("utf-8", "replace")))


def make_pki(directory, name="bb"):
    """Makes a CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) signed by it in directory.
    Returns {"ca": ca.pem, "cert": server.pem, "key": server.key, "dir": directory}. Also makes a
    second, unrelated CA ("other_ca") for tests that need a CA that does not sign the server."""
    os.makedirs(directory, exist_ok=True)
    p = lambda f: os.path.join(directory, "%s-%s" % (name, f))  # noqa: E731
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                 "-keyout", p(ca + ".key"), "-out", p(ca + ".pem"), "-subj", "/CN=hendelse bb %s" % ca,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", p("server.key"),
             "-out", p("server.csr"), "-subj", "/CN=127.0.0.1", cwd=directory)
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
             "-set_serial", "0x%s" % uuid.uuid4().hex[:16], "-days", "2", "-sha256",
             "-extfile", p("server.ext"), "-out", p("server.pem"), cwd=directory)
    return {"ca": p("ca.pem"), "other_ca": p("other-ca.pem"), "cert": p("server.pem"),
            "key": p("server.key"), "dir": directory}
