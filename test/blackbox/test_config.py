"""Configuration and logs: `serve --config FILE`, HENDELSE_<NAME> variables and flags in that order of
precedence, every start-up error of the config file and the environment (exit 2, one line naming the
key), --print-config (sources, masking), --log-format json, --log-level, and the request log with its
sampler (--request-log on|off|sample). architecture.md "Command line and config"."""

import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, Conn, Server, binary, event, fresh_resource,  # noqa: E402
                     make_token, bearer, new_secret_file, run_cli, sanitizer_report)

ALL_OPTIONS = [
    "config", "listen", "data", "base-url", "dev", "auth", "jwt-hs256-secret-file",
    "jwt-public-key-file", "dev-identity", "authz", "register", "max-event-bytes", "max-store-bytes",
    "settle", "sync", "webhook-ca-file", "webhook-timeout", "retry-schedule", "validation-schedule",
    "log-level", "log-format", "request-log",
]
REQUEST_FIELDS = ("method", "path", "status", "bytes", "duration_us", "sample")
TEXT_REQUEST_RE = re.compile(r"^\S+Z info http request method=(\S+) path=(\S+) status=(\d+) bytes=(\d+) "
                             r"duration_us=(\d+) sample=(\d+)$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(**extra):
    """The test's environment without any HENDELSE_ setting but HENDELSE_BIN, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HENDELSE_") or k == "HENDELSE_BIN"}
    env.update(extra)
    return env


class ConfigServer(Server):
    """A server started with exactly the given arguments and environment (no --listen/--data added)."""

    def __init__(self, args, env=None, **kw):
        self.raw_args = [str(a) for a in args]
        self.env_extra = dict(env or {})
        super().__init__(**kw)

    def argv(self):
        env = ["%s=%s" % kv for kv in sorted(self.env_extra.items())]
        return ["env"] + env + [binary(), "serve"] + self.raw_args


class ConfigTest(BBTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-config-")
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write_config(self, doc, name="config.json"):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return p

    def start(self, args, env=None):
        srv = ConfigServer(args, env)
        self.addCleanup(srv.cleanup)
        return srv

    def run_serve(self, *args, env=None):
        code, out, err = run_cli("serve", *args, env=clean_env(**(env or {})))
        self.assertIsNone(sanitizer_report(err), err)
        self.assertIsNotNone(code, "still running: %r\nstderr: %s" % (args, err))
        return code, out, err

    def print_config(self, *args, env=None):
        code, out, err = self.run_serve(*(list(args) + ["--print-config"]), env=env)
        self.assertEqual(code, 0, "print-config %r failed: %s" % (args, err))
        self.assertNotIn("listening on", out)
        doc = json.loads(out)
        self.assertIsInstance(doc, dict)
        return doc

    def assertStartError(self, args, env=None, must_name=()):
        code, out, err = self.run_serve(*args, env=env)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        self.assertEqual(code, 2, "args %r env %r: exit %r, stderr %r" % (args, env, code, err))
        self.assertEqual(len(lines), 1, "one line on stderr for %r %r, got %r" % (args, env, err))
        self.assertNotIn("listening on", out)
        for word in must_name:
            self.assertIn(word, lines[0], "the error line should name %r" % word)
        return lines[0]

    # --- precedence: defaults < file < env < flag --------------------------------------------

    def test_listen_precedence_by_the_ready_line(self):
        pf, pe = free_port(), free_port()
        cfg = self.write_config({"listen": "127.0.0.1:%d" % pf, "dev": True,
                                 "data": self.path("data-file")})
        srv = self.start(["--config", cfg])
        self.assertEqual(srv.port, pf, "file sets the port")
        srv.stop()
        srv = self.start(["--config", cfg], env={"HENDELSE_LISTEN": "127.0.0.1:%d" % pe})
        self.assertEqual(srv.port, pe, "the environment wins over the file")
        srv.stop()
        srv = self.start(["--config", cfg, "--listen", "127.0.0.1:0"],
                         env={"HENDELSE_LISTEN": "127.0.0.1:%d" % pe})
        self.assertNotIn(srv.port, (pf, pe), "the flag wins over the environment")
        self.assertEqual(srv.request("GET", "/health").status, 200)

    def test_data_dir_precedence(self):
        d_file, d_env, d_flag = self.path("d-file"), self.path("d-env"), self.path("d-flag")
        cfg = self.write_config({"listen": "127.0.0.1:0", "dev": True, "data": d_file})
        srv = self.start(["--config", cfg])
        srv.stop()
        self.assertTrue(os.path.isdir(d_file))
        self.assertFalse(os.path.exists(d_env) or os.path.exists(d_flag))
        srv = self.start(["--config", cfg], env={"HENDELSE_DATA": d_env})
        srv.stop()
        self.assertTrue(os.path.isdir(d_env))
        self.assertFalse(os.path.exists(d_flag))
        srv = self.start(["--config", cfg, "--data", d_flag], env={"HENDELSE_DATA": d_env})
        srv.stop()
        self.assertTrue(os.path.isdir(d_flag))

    def test_config_file_from_the_environment(self):
        pf = free_port()
        cfg = self.write_config({"listen": "127.0.0.1:%d" % pf, "dev": True, "data": self.path("d")})
        srv = self.start([], env={"HENDELSE_CONFIG": cfg})
        self.assertEqual(srv.port, pf)
        doc = self.print_config(env={"HENDELSE_CONFIG": cfg})
        self.assertEqual(doc["config"], {"value": cfg, "source": "env"})

    def test_max_event_bytes_precedence_by_behaviour(self):
        # An event of about 1500 bytes: refused under 1000 (file), accepted under 2000 (env),
        # refused under 1200 (flag).
        ev = event(resource=fresh_resource("cfg"), data="x" * 1300)
        size = len(json.dumps(ev))
        self.assertTrue(1200 < size < 2000, size)
        cfg = self.write_config({"listen": "127.0.0.1:0", "dev": True, "auth": "none",
                                 "max-event-bytes": 1000, "data": self.path("d")})
        for env, flags, want in (({}, [], 413),
                                 ({"HENDELSE_MAX_EVENT_BYTES": "2000"}, [], 200),
                                 ({"HENDELSE_MAX_EVENT_BYTES": "2000"}, ["--max-event-bytes", "1200"], 413)):
            with self.subTest(env=env, flags=flags):
                srv = self.start(["--config", cfg] + flags, env=env)
                self.assertEqual(srv.publish(ev).status, want)
                srv.stop()

    def test_repeatable_option_replaced_by_a_higher_source(self):
        # The file names secret A, the flag secret B: only B's tokens pass.
        path_a, secret_a = new_secret_file(self.tmp.name)
        path_b, secret_b = new_secret_file(self.tmp.name)
        cfg = self.write_config({"listen": "127.0.0.1:0", "auth": "jwt", "data": self.path("d"),
                                 "jwt-hs256-secret-file": [path_a]})
        srv = self.start(["--config", cfg])
        self.assertEqual(srv.request("GET", "/events/api/v1/subscriptions", None,
                                     bearer(make_token(secret_a))).status, 200)
        srv.stop()
        srv = self.start(["--config", cfg, "--jwt-hs256-secret-file", path_b])
        self.assertEqual(srv.request("GET", "/events/api/v1/subscriptions", None,
                                     bearer(make_token(secret_b))).status, 200)
        self.assertEqual(srv.request("GET", "/events/api/v1/subscriptions", None,
                                     bearer(make_token(secret_a))).status, 401)

    def test_boolean_from_the_environment(self):
        cfg = self.write_config({"listen": "127.0.0.1:0", "dev": True, "data": self.path("d")})
        # dev from the file: auth defaults to unverified, no secret needed
        self.assertEqual(self.print_config("--config", cfg)["dev"], {"value": True, "source": "file"})
        for v in ("0", "false", "FALSE"):
            with self.subTest(value=v):
                # production profile: --auth jwt needs a key, so start-up stops
                line = self.assertStartError(["--config", cfg], env={"HENDELSE_DEV": v})
                self.assertIn("--auth jwt", line)
        doc = self.print_config("--config", cfg, "--dev", env={"HENDELSE_DEV": "0"})
        self.assertEqual(doc["dev"], {"value": True, "source": "flag"})
        doc = self.print_config(env={"HENDELSE_DEV": "1"})
        self.assertEqual(doc["dev"], {"value": True, "source": "env"})
        self.assertEqual(doc["auth"], {"value": "unverified", "source": "default"})
        doc = self.print_config("--dev=false", "--auth", "none", env={"HENDELSE_DEV": "true"})
        self.assertEqual(doc["dev"], {"value": False, "source": "flag"})

    def test_print_config_sources_and_values(self):
        cfg = self.write_config({
            "listen": "127.0.0.1:7001", "data": self.path("never"), "dev": True,
            "retry-schedule": ["1s", "2s", "5s"], "validation-schedule": "1s,1s",
            "max-event-bytes": 4096, "log-level": "warn", "webhook-timeout": 7,
        })
        doc = self.print_config("--config", cfg, "--log-level", "debug", "--request-log", "off",
                                env={"HENDELSE_LISTEN": "127.0.0.1:7002", "HENDELSE_LOG_FORMAT": "json",
                                     "HENDELSE_RETRY_SCHEDULE": "3s,4s"})
        for k in ALL_OPTIONS:
            self.assertIn(k, doc)
            self.assertEqual(set(doc[k]), {"value", "source"}, k)
            self.assertIn(doc[k]["source"], ("default", "file", "env", "flag"), k)
        self.assertEqual(doc["config"], {"value": cfg, "source": "flag"})
        self.assertEqual(doc["listen"], {"value": "127.0.0.1:7002", "source": "env"})
        self.assertEqual(doc["data"], {"value": self.path("never"), "source": "file"})
        self.assertEqual(doc["retry-schedule"], {"value": "3s,4s", "source": "env"})
        self.assertEqual(doc["validation-schedule"], {"value": "1s,1s", "source": "file"})
        self.assertEqual(doc["max-event-bytes"], {"value": "4096", "source": "file"})
        self.assertEqual(doc["webhook-timeout"], {"value": "7", "source": "file"})
        self.assertEqual(doc["log-level"], {"value": "debug", "source": "flag"})
        self.assertEqual(doc["log-format"], {"value": "json", "source": "env"})
        self.assertEqual(doc["request-log"], {"value": "off", "source": "flag"})
        self.assertEqual(doc["sync"], {"value": "fsync", "source": "default"})
        self.assertEqual(doc["auth"], {"value": "unverified", "source": "default"})
        self.assertEqual(doc["jwt-hs256-secret-file"], {"value": [], "source": "default"})
        self.assertFalse(os.path.exists(self.path("never")), "print-config must not start a server")

    def test_print_config_masks_secrets(self):
        path_a, secret_a = new_secret_file(self.tmp.name)
        missing = self.path("no-such-secret")
        cfg = self.write_config({"jwt-hs256-secret-file": [path_a, missing],
                                 "base-url": "https://user:hunter2pw@events.example/"})
        code, out, err = self.run_serve("--config", cfg, "--print-config")
        # the secret files are not read (one does not even exist): only their paths are shown
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["jwt-hs256-secret-file"], {"value": [path_a, missing], "source": "file"})
        self.assertNotIn(secret_a, out)
        self.assertNotIn("hunter2pw", out)
        self.assertIn("user:", doc["base-url"]["value"])
        self.assertIn("@events.example/", doc["base-url"]["value"])
        self.assertEqual(doc["auth"]["value"], "jwt")
        self.assertFalse(os.path.exists(self.path("hendelse-data")))

    def test_help_lists_the_new_options(self):
        code, out, err = run_cli("--help")
        self.assertEqual(code, 0, err)
        for opt in ("--config FILE", "--print-config", "--log-format", "--log-level", "--request-log",
                    "HENDELSE_"):
            self.assertIn(opt, out)

    # --- errors: exit 2, one line naming the key and the file --------------------------------

    def test_config_file_errors(self):
        cases = [
            ({"lisen": "127.0.0.1:0"}, ["lisen"]),
            ({"dev": True, "config": "/x"}, ["config"]),
            ({"print-config": True}, ["print-config"]),
            ({"listen": 5080}, ["listen"]),
            ({"listen": ["127.0.0.1:0"]}, ["listen"]),
            ({"dev": "yes"}, ["dev"]),
            ({"dev": 1}, ["dev"]),
            ({"max-event-bytes": True}, ["max-event-bytes"]),
            ({"max-event-bytes": 1.5}, ["max-event-bytes"]),
            ({"max-event-bytes": -5}, ["max-event-bytes"]),
            ({"jwt-hs256-secret-file": [1]}, ["jwt-hs256-secret-file"]),
            ({"jwt-hs256-secret-file": {"a": 1}}, ["jwt-hs256-secret-file"]),
            ({"retry-schedule": [10, 20]}, ["retry-schedule"]),
            ({"dev": None}, ["dev"]),
            ({"listen": "nonsense"}, ["listen", "nonsense"]),
            ({"auth": "bogus"}, ["auth", "bogus"]),
            ({"max-event-bytes": "abc"}, ["max-event-bytes"]),
            ({"max-event-bytes": 10}, ["max-event-bytes"]),
            ({"retry-schedule": "10s,zz"}, ["retry-schedule"]),
            ({"settle": "forever"}, ["settle"]),
            ({"sync": "sometimes"}, ["sync"]),
            ({"log-format": "xml"}, ["log-format"]),
            ({"log-level": "verbose"}, ["log-level"]),
            ({"request-log": "sometimes"}, ["request-log"]),
            ({"data": ""}, ["data"]),
        ]
        for doc, names in cases:
            with self.subTest(doc=doc):
                cfg = self.write_config(doc)
                self.assertStartError(["--config", cfg, "--dev"], must_name=[cfg] + names)

    def test_config_file_unreadable_or_not_json(self):
        cases = {
            "truncated": '{"listen": "127.0.0.1:0"',
            "comment": '{"dev": true /* dev */}',
            "trailing": '{"dev": true} x',
            "empty": "",
            "duplicate": '{"dev": true, "dev": false}',
            "array": '["--dev"]',
            "string": '"dev"',
            "bad-utf8": b'{"data": "\xff"}'.decode("latin-1"),
        }
        for name, text in cases.items():
            with self.subTest(case=name):
                cfg = self.path("bad-%s.json" % name)
                with open(cfg, "wb") as f:
                    f.write(text.encode("latin-1"))
                self.assertStartError(["--config", cfg, "--dev"], must_name=[cfg])
        missing = self.path("missing.json")
        self.assertStartError(["--config", missing, "--dev"], must_name=[missing])
        self.assertStartError(["--config", self.tmp.name, "--dev"], must_name=[self.tmp.name])
        self.assertStartError(["--dev"], env={"HENDELSE_CONFIG": missing}, must_name=[missing])
        self.assertStartError(["--dev", "--config"])
        if os.geteuid() != 0:  # root reads anything
            locked = self.write_config({"dev": True}, "locked.json")
            os.chmod(locked, 0)
            self.assertStartError(["--config", locked], must_name=[locked])

    def test_environment_errors(self):
        cases = {
            "HENDELSE_LISTEN": "nonsense",
            "HENDELSE_DEV": "maybe",
            "HENDELSE_MAX_EVENT_BYTES": "lots",
            "HENDELSE_RETRY_SCHEDULE": "soon",
            "HENDELSE_AUTH": "bogus",
            "HENDELSE_LOG_FORMAT": "xml",
            "HENDELSE_REQUEST_LOG": "maybe",
        }
        for name, value in cases.items():
            with self.subTest(var=name):
                self.assertStartError(["--dev"], env={name: value}, must_name=[name, value])
        # the flag still wins over a good variable, and a bad flag is named as a flag
        line = self.assertStartError(["--dev", "--log-format", "xml"], env={"HENDELSE_LOG_FORMAT": "json"})
        self.assertIn("--log-format", line)

    def test_flag_errors_for_log_options(self):
        for args in (["--log-format", "yaml"], ["--log-level", "trace"], ["--request-log", "some"],
                     ["--log-format"], ["--dev=perhaps"], ["--print-config=2"]):
            with self.subTest(args=args):
                self.assertStartError(["--dev", "--listen", "127.0.0.1:0"] + args)

    def test_a_file_error_comes_before_the_flags_are_used(self):
        # a bad file is refused even when a flag would override the key
        cfg = self.write_config({"listen": "nonsense"})
        self.assertStartError(["--config", cfg, "--dev", "--listen", "127.0.0.1:0"],
                              must_name=[cfg, "listen"])


class LogTest(BBTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-log-")
        self.addCleanup(self.tmp.cleanup)

    def start(self, *args):
        srv = Server("--dev", "--auth", "none", *args)
        self.addCleanup(srv.cleanup)
        return srv

    def stderr_after_stop(self, srv):
        self.assertEqual(srv.stop(), 0)
        return srv.stderr_text()

    def request_lines_json(self, text):
        return [d for d in (json.loads(ln) for ln in text.splitlines() if ln.strip())
                if d.get("module") == "http" and d.get("msg") == "request"]

    def some_requests(self, srv):
        ev = event(resource=fresh_resource("log"))
        self.assertEqual(srv.request("GET", "/health?token=sekrit-query").status, 200)
        self.assertEqual(srv.request("GET", "/no/such/path").status, 404)
        self.assertEqual(srv.request("DELETE", "/health").status, 405)
        r = srv.publish(ev, headers={"Authorization": "Bearer sekrit.bearer.token"})
        self.assertEqual(r.status, 200, r)
        return ev, len(r.body)

    def test_json_lines(self):
        srv = self.start("--log-format", "json", "--request-log", "on")
        ev, publish_bytes = self.some_requests(srv)
        text = self.stderr_after_stop(srv)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        self.assertGreater(len(lines), 3)
        for ln in lines:
            doc = json.loads(ln)  # every line is one JSON object
            self.assertIsInstance(doc, dict, ln)
            for k in ("time", "level", "module", "msg"):
                self.assertIn(k, doc, ln)
            self.assertRegex(doc["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            self.assertIn(doc["level"], ("debug", "info", "warn", "error"))
        started = [json.loads(ln) for ln in lines if '"started"' in ln and '"server"' in ln]
        self.assertEqual(len(started), 1)
        self.assertEqual(started[0]["profile"], "development")
        self.assertIsInstance(started[0]["last_seq"], int)

        reqs = self.request_lines_json(text)
        self.assertEqual(len(reqs), 4, reqs)
        for d in reqs:
            for k in REQUEST_FIELDS:
                self.assertIn(k, d)
            self.assertEqual(d["level"], "info")
            self.assertIsInstance(d["status"], int)
            self.assertIsInstance(d["bytes"], int)
            self.assertIsInstance(d["duration_us"], int)
            self.assertGreaterEqual(d["duration_us"], 0)
            self.assertEqual(d["sample"], 1)
        got = [(d["method"], d["path"], d["status"]) for d in reqs]
        self.assertEqual(got, [("GET", "/health", 200), ("GET", "/no/such/path", 404),
                               ("DELETE", "/health", 405), ("POST", "/events/api/v1/events", 200)])
        self.assertEqual(reqs[0]["bytes"], len(b"Healthy"))
        self.assertEqual(reqs[3]["bytes"], publish_bytes)
        # never the query string, the token or the body
        self.assertNotIn("sekrit", text)
        self.assertNotIn(ev["id"], text)

    def test_text_request_lines(self):
        srv = self.start("--request-log", "on")
        _, publish_bytes = self.some_requests(srv)
        text = self.stderr_after_stop(srv)
        got = [TEXT_REQUEST_RE.match(ln) for ln in text.splitlines() if " http request " in ln]
        self.assertTrue(all(got), text)
        self.assertEqual([m.groups()[:4] for m in got],
                         [("GET", "/health", "200", "7"), ("GET", "/no/such/path", "404", "0"),
                          ("DELETE", "/health", "405", "0"),
                          ("POST", "/events/api/v1/events", "200", str(publish_bytes))])
        self.assertNotIn("sekrit", text)

    def test_odd_path_is_quoted(self):
        srv = self.start("--log-format", "json", "--request-log", "on")
        srv.request("GET", '/x"y\\z%20')
        text = self.stderr_after_stop(srv)
        reqs = self.request_lines_json(text)
        self.assertEqual([d["path"] for d in reqs], ['/x"y\\z%20'])

    def test_request_log_off(self):
        srv = self.start("--request-log", "off", "--log-format", "json")
        self.some_requests(srv)
        text = self.stderr_after_stop(srv)
        self.assertEqual(self.request_lines_json(text), [])
        self.assertIn('"started"', text)

    def test_log_level_warn_drops_info(self):
        srv = self.start("--log-level", "warn", "--request-log", "on")
        self.some_requests(srv)
        text = self.stderr_after_stop(srv)
        self.assertNotIn(" info ", text)
        self.assertNotIn("request method=", text)

    def hammer(self, srv, n, threads=8):
        """n GET /health over keep-alive connections as fast as they go."""
        left = {"n": n}
        lock = threading.Lock()
        errors = []

        def worker():
            c = Conn(srv.port)
            try:
                while True:
                    with lock:
                        if left["n"] == 0:
                            return
                        left["n"] -= 1
                    if c.request("GET", "/health").status != 200:
                        errors.append("status")
            except Exception as e:  # reported below
                errors.append(e)
            finally:
                c.close()

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        return time.monotonic() - t0

    def test_sampling_under_load(self):
        srv = self.start("--log-format", "json")  # --request-log sample is the default
        n = 4000
        took = self.hammer(srv, n)
        text = self.stderr_after_stop(srv)
        reqs = self.request_lines_json(text)
        self.assertGreater(n / took, 150, "the load was too light to need sampling (%.0f/s)" % (n / took))
        self.assertLess(len(reqs), n, "sampling logs fewer lines than requests")
        self.assertGreater(len(reqs), 0)
        rates = [d["sample"] for d in reqs]
        self.assertTrue(all(isinstance(r, int) and r >= 1 for r in rates), rates)
        self.assertTrue(any(r > 1 for r in rates), "some lines stand for several requests")
        # each line stands for `sample` requests: together about all of them
        total = sum(rates)
        self.assertLessEqual(total, n)
        self.assertGreaterEqual(total, n * 0.5, (total, n))

    def test_request_log_on_logs_every_request(self):
        srv = self.start("--log-format", "json", "--request-log", "on")
        n = 600
        self.hammer(srv, n)
        text = self.stderr_after_stop(srv)
        reqs = self.request_lines_json(text)
        self.assertEqual(len(reqs), n)
        self.assertTrue(all(d["sample"] == 1 for d in reqs))


if __name__ == "__main__":
    unittest.main()
