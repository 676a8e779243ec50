"""GET /metrics (Prometheus text format 0.0.4): the response parses, every family has # HELP and
# TYPE, `promtool check metrics` accepts it (when promtool is installed; .ci/deps installs the Debian
package prometheus), no authentication is needed even under --auth jwt, other methods get 405, and the
values move when events flow: publishes by outcome, commit batches and the batch-size and fsync
histograms, deliveries by outcome with the publish-to-delivery latency histogram, retries pending, dead
letters, subscriptions by state, open connections."""

import math
import os
import time
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event, fresh_resource,  # noqa: E402
                     make_token, new_secret_file, wait_until)
from receiver import Answer, OK, Receiver  # noqa: E402

METRICS_CTYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')

REQUIRED = {
    "hendelse_build_info": "gauge",
    "hendelse_events_published_total": "counter",
    "hendelse_store_bytes": "gauge",
    "hendelse_commit_batches_total": "counter",
    "hendelse_commit_batch_size": "histogram",
    "hendelse_fsync_seconds": "histogram",
    "hendelse_subscriptions": "gauge",
    "hendelse_deliveries_total": "counter",
    "hendelse_retries_pending": "gauge",
    "hendelse_dead_letters_total": "counter",
    "hendelse_publish_to_delivery_seconds": "histogram",
    "hendelse_open_connections": "gauge",
}


def parse_value(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)


def parse_labels(text):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise AssertionError("bad label set: %r" % text)
        labels[m.group(1)] = re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                    m.group(2))
        pos = m.end()
    return labels


class Metrics:
    """A parsed exposition: families {name: {"type", "help", "samples": [(name, labels, value)]}}."""

    def __init__(self, text):
        self.text = text
        self.families = {}
        current = None
        for n, line in enumerate(text.split("\n"), 1):
            if line == "":
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                kind, rest = line[2:6], line[7:]
                name, _, val = rest.partition(" ")
                if not NAME_RE.match(name):
                    raise AssertionError("line %d: bad metric name %r" % (n, name))
                fam = self.families.setdefault(name, {"type": None, "help": None, "samples": []})
                if fam["samples"]:
                    raise AssertionError("line %d: # %s after samples of %s" % (n, kind, name))
                key = "help" if kind == "HELP" else "type"
                if fam[key] is not None:
                    raise AssertionError("line %d: second # %s for %s" % (n, kind, name))
                fam[key] = val
                current = name
                continue
            if line.startswith("#"):
                continue
            m = SAMPLE_RE.match(line)
            if not m:
                raise AssertionError("line %d: not a sample line: %r" % (n, line))
            sname = m.group(1)
            fam_name = sname
            if current and sname != current:
                for suffix in ("_bucket", "_sum", "_count"):
                    if sname == current + suffix:
                        fam_name = current
            if fam_name not in self.families or fam_name != current:
                raise AssertionError("line %d: sample %s outside its family (no # TYPE before it)"
                                     % (n, sname))
            labels = parse_labels(m.group(3) or "")
            self.families[fam_name]["samples"].append((sname, labels, parse_value(m.group(4))))
        if not text.endswith("\n"):
            raise AssertionError("the exposition must end with a newline")

    def value(self, name, **labels):
        """The value of the one sample name{labels}; fails if there is not exactly one."""
        hits = [v for fam in self.families.values() for (s, lb, v) in fam["samples"]
                if s == name and lb == labels]
        if len(hits) != 1:
            raise AssertionError("%d samples %s%r in:\n%s" % (len(hits), name, labels, self.text))
        return hits[0]

    def histogram(self, name):
        """[(le, cumulative count)], sum, count of histogram family name."""
        fam = self.families[name]
        buckets = [(parse_value(lb["le"]), v) for s, lb, v in fam["samples"] if s == name + "_bucket"]
        return buckets, self.value(name + "_sum"), self.value(name + "_count")


class MetricsTestBase(BBTestCase):
    RETRY = "3s,3s"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-metrics-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", "allow-all",
            "--retry-schedule", cls.RETRY, "--validation-schedule", "100ms,100ms,100ms")
        cls.tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="ttd")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def scrape(self, srv=None, conn=None):
        srv = srv or self.srv
        r = conn.request("GET", "/metrics") if conn else srv.request("GET", "/metrics")
        self.assertStatus(r, 200)
        self.assertEqual(r.headers.get("content-type"), METRICS_CTYPE)
        return Metrics(r.body.decode("utf-8"))

    def subscribe(self, resource, path, event_answer=OK, handshake_answer=OK, validated=True,
                  srv=None):
        srv = srv or self.srv
        self.recv.handshake_then(path, event_answer, handshake_answer)
        r = srv.create_subscription({"endPoint": self.recv.url(path), "resourceFilter": resource},
                                    self.tok)
        self.assertStatus(r, 201)
        sub = r.json()
        if validated:
            got = srv.wait_validated(sub["id"], self.tok, timeout=10)
            self.assertTrue(got and got.get("validated"), "subscription never validated: %r" % (got,))
        return sub

    def wait_metric(self, pred, srv=None, timeout=10.0):
        """Scrapes until pred(metrics) holds; returns the last scrape (the caller asserts)."""
        last = {}

        def once():
            last["m"] = self.scrape(srv)
            return pred(last["m"])

        wait_until(once, timeout=timeout)
        return last["m"]


class TestMetricsFormat(MetricsTestBase):
    def test_parses_and_every_family_is_declared(self):
        m = self.scrape()
        for name, typ in REQUIRED.items():
            self.assertIn(name, m.families, "family %s missing:\n%s" % (name, m.text))
            self.assertEqual(m.families[name]["type"], typ, name)
        for name, fam in m.families.items():
            self.assertTrue(name.startswith("hendelse_"), name)
            self.assertTrue(fam["help"], "no # HELP for %s" % name)
            self.assertIn(fam["type"], ("counter", "gauge", "histogram"), name)
            self.assertTrue(fam["samples"], "family %s has no samples" % name)
            if fam["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)
        self.assertEqual(m.value("hendelse_build_info", version=m.families["hendelse_build_info"]
                                 ["samples"][0][1]["version"]), 1)
        self.assertRegex(m.families["hendelse_build_info"]["samples"][0][1]["version"], r"^\d+\.\d+")
        self.assertGreater(m.value("hendelse_store_bytes"), 0)
        for outcome in ("stored", "duplicate", "rejected", "full", "error"):
            m.value("hendelse_events_published_total", outcome=outcome)
        for state in ("validated", "unvalidated", "disabled"):
            m.value("hendelse_subscriptions", state=state)
        for outcome in ("success", "failure", "dead_letter"):
            m.value("hendelse_deliveries_total", outcome=outcome)

    def test_histograms_are_well_formed(self):
        m = self.scrape()
        for name, typ in REQUIRED.items():
            if typ != "histogram":
                continue
            buckets, total, count = m.histogram(name)
            self.assertGreaterEqual(len(buckets), 5, name)
            les = [le for le, _ in buckets]
            self.assertEqual(les, sorted(les), "%s: buckets out of order" % name)
            self.assertEqual(les[-1], math.inf, "%s: no +Inf bucket" % name)
            counts = [c for _, c in buckets]
            self.assertEqual(counts, sorted(counts), "%s: buckets not cumulative" % name)
            self.assertEqual(counts[-1], count, "%s: +Inf bucket != _count" % name)
            self.assertGreaterEqual(total, 0)
        fsync_les = [le for le, _ in m.histogram("hendelse_fsync_seconds")[0]]
        self.assertIn(0.0005, fsync_les)
        self.assertIn('le="0.0005"', m.text)

    def test_promtool_check_metrics(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed (Debian package prometheus; .ci/deps installs it)")
        # some traffic first, so that the histograms have observations
        self.assertStatus(self.srv.publish(event(resource=fresh_resource("prom")), self.tok), 200)
        text = self.scrape().text
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics: %s%s\n%s"
                         % (p.stdout.decode(), p.stderr.decode(), text))
        self.assertEqual((p.stdout + p.stderr).strip(), b"", "promtool lint findings")

    def test_no_auth_and_methods(self):
        # --auth jwt, no Authorization header: still 200 (like /health)
        r = self.srv.request("GET", "/metrics")
        self.assertStatus(r, 200)
        r = self.srv.request("GET", "/metrics/")
        self.assertStatus(r, 200)
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            r = self.srv.request(method, "/metrics")
            self.assertStatus(r, 405)
            self.assertEqual(r.headers.get("allow"), "GET")


class TestMetricsMove(MetricsTestBase):
    def test_publish_outcomes_and_commits(self):
        res = fresh_resource("pub")
        before = self.scrape()
        n = 5
        for _ in range(n):
            self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
        batch = [event(resource=res) for _ in range(3)]
        self.assertStatus(self.srv.publish(batch, self.tok,
                                           content_type="application/cloudevents-batch+json"), 200)
        dup = event(resource=res)
        self.assertStatus(self.srv.publish(dup, self.tok), 200)
        self.assertStatus(self.srv.publish(dup, self.tok), 200)  # a duplicate
        self.assertStatus(self.srv.publish({"specversion": "1.0"}, self.tok), 400)  # rejected
        self.assertStatus(self.srv.publish(event(resource=res)), 401)  # rejected (no token)
        after = self.scrape()

        def delta(name, **lb):
            return after.value(name, **lb) - before.value(name, **lb)

        self.assertEqual(delta("hendelse_events_published_total", outcome="stored"), n + 3 + 1)
        self.assertEqual(delta("hendelse_events_published_total", outcome="duplicate"), 1)
        self.assertEqual(delta("hendelse_events_published_total", outcome="rejected"), 2)
        self.assertEqual(delta("hendelse_events_published_total", outcome="full"), 0)
        self.assertEqual(delta("hendelse_events_published_total", outcome="error"), 0)
        # every answered publish waited for its own commit: at least one commit per request here
        self.assertGreaterEqual(delta("hendelse_commit_batches_total"), n + 3)
        self.assertGreaterEqual(delta("hendelse_commit_batch_size_count"), n + 3)
        self.assertEqual(delta("hendelse_commit_batch_size_sum"), n + 3 + 2)
        self.assertGreaterEqual(delta("hendelse_fsync_seconds_count"), n + 3)
        self.assertGreater(delta("hendelse_fsync_seconds_sum"), 0)
        buckets, _, _ = after.histogram("hendelse_commit_batch_size")
        le3 = dict(buckets)[4.0] - dict(before.histogram("hendelse_commit_batch_size")[0])[4.0]
        self.assertGreaterEqual(le3, 1, "the batch of 3 is in a bucket <= 4")
        self.assertGreaterEqual(after.value("hendelse_store_bytes"), before.value("hendelse_store_bytes"))

    def test_store_bytes_grows(self):
        before = self.scrape().value("hendelse_store_bytes")
        res = fresh_resource("big")
        blob = "x" * 60000
        for _ in range(40):
            self.assertStatus(self.srv.publish(event(resource=res, data=blob), self.tok), 200)
        self.assertGreater(self.scrape().value("hendelse_store_bytes"), before + 1000000)

    def test_successful_deliveries_and_latency(self):
        res = fresh_resource("ok")
        path = self.recv.unique_path("ok")
        before_subs = self.scrape().value("hendelse_subscriptions", state="validated")
        self.subscribe(res, path)
        before = self.scrape()
        self.assertEqual(before.value("hendelse_subscriptions", state="validated"), before_subs + 1)
        n = 4
        for _ in range(n):
            self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
        self.assertEqual(len(self.recv.wait_for(n, path=path, kind="event")), n)
        base_ok = before.value("hendelse_deliveries_total", outcome="success")
        base_lat = before.value("hendelse_publish_to_delivery_seconds_count")
        m = self.wait_metric(lambda m: m.value("hendelse_deliveries_total", outcome="success")
                             >= base_ok + n and m.value("hendelse_publish_to_delivery_seconds_count")
                             >= base_lat + n)
        self.assertEqual(m.value("hendelse_deliveries_total", outcome="success") - base_ok, n)
        self.assertEqual(m.value("hendelse_publish_to_delivery_seconds_count") - base_lat, n)
        lat_sum = (m.value("hendelse_publish_to_delivery_seconds_sum")
                   - before.value("hendelse_publish_to_delivery_seconds_sum"))
        self.assertGreater(lat_sum, 0)
        self.assertLess(lat_sum, n * 10.0, "latencies are seconds, not microseconds")
        buckets, _, _ = m.histogram("hendelse_publish_to_delivery_seconds")
        self.assertEqual(buckets[-1][1], m.value("hendelse_publish_to_delivery_seconds_count"))

    def test_failing_receiver_counts_failures_and_retries(self):
        res = fresh_resource("fail")
        path = self.recv.unique_path("fail")
        self.subscribe(res, path, event_answer=Answer(500))
        before = self.scrape()
        self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
        base_fail = before.value("hendelse_deliveries_total", outcome="failure")
        base_retry = before.value("hendelse_retries_pending")
        m = self.wait_metric(lambda m: m.value("hendelse_deliveries_total", outcome="failure")
                             >= base_fail + 1 and m.value("hendelse_retries_pending") >= base_retry + 1)
        self.assertGreaterEqual(m.value("hendelse_deliveries_total", outcome="failure"), base_fail + 1)
        self.assertGreaterEqual(m.value("hendelse_retries_pending"), base_retry + 1)
        self.assertEqual(m.value("hendelse_deliveries_total", outcome="success"),
                         before.value("hendelse_deliveries_total", outcome="success"))

    def test_subscription_states(self):
        before = self.scrape()
        # a handshake that keeps failing: unvalidated
        self.subscribe(fresh_resource("unval"), self.recv.unique_path("unval"),
                       handshake_answer=Answer(500), validated=False)
        # an endpoint that answers 410 Gone to an event: disabled
        res = fresh_resource("gone")
        self.subscribe(res, self.recv.unique_path("gone"), event_answer=Answer(410))
        self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
        m = self.wait_metric(lambda m: m.value("hendelse_subscriptions", state="disabled")
                             >= before.value("hendelse_subscriptions", state="disabled") + 1)
        for state, d in (("unvalidated", 1), ("disabled", 1), ("validated", 0)):
            self.assertEqual(m.value("hendelse_subscriptions", state=state)
                             - before.value("hendelse_subscriptions", state=state), d, state)

    def test_open_connections(self):
        # Other tests' connections may still be closing on the server's side, so the count is
        # compared with itself while this test's connections are open and after one is closed.
        name = "hendelse_open_connections"
        with self.srv.connection() as c2:
            with self.srv.connection() as c1:
                self.assertStatus(c1.request("GET", "/health"), 200)
                # c1 is idle but open, c2 is the one asking; both count
                with_both = self.scrape(conn=c2).value(name)
                self.assertGreaterEqual(with_both, 2)
                # keep-alive: c1 asking again on the same connection opens nothing new
                self.assertLessEqual(self.scrape(conn=c1).value(name), with_both)
            # c1 closed: the server notices asynchronously and counts one fewer
            deadline = time.time() + 10
            while time.time() < deadline and self.scrape(conn=c2).value(name) > with_both - 1:
                time.sleep(0.05)
            self.assertLessEqual(self.scrape(conn=c2).value(name), with_both - 1)
        self.assertGreaterEqual(self.scrape().value(name), 1)


class TestMetricsDeadLetters(MetricsTestBase):
    RETRY = "50ms"  # two attempts in all

    def test_dead_letter(self):
        res = fresh_resource("dead")
        path = self.recv.unique_path("dead")
        self.subscribe(res, path, event_answer=Answer(500))
        before = self.scrape()
        self.assertStatus(self.srv.publish(event(resource=res), self.tok), 200)
        base = before.value("hendelse_dead_letters_total")
        m = self.wait_metric(lambda m: m.value("hendelse_dead_letters_total") >= base + 1)
        self.assertEqual(m.value("hendelse_dead_letters_total") - base, 1)
        self.assertEqual(m.value("hendelse_deliveries_total", outcome="dead_letter")
                         - before.value("hendelse_deliveries_total", outcome="dead_letter"), 1)
        self.assertEqual(m.value("hendelse_deliveries_total", outcome="failure")
                         - before.value("hendelse_deliveries_total", outcome="failure"), 2)
        self.assertEqual(m.value("hendelse_retries_pending"), before.value("hendelse_retries_pending"))
        self.assertEqual(m.value("hendelse_publish_to_delivery_seconds_count"),
                         before.value("hendelse_publish_to_delivery_seconds_count"))


if __name__ == "__main__":
    unittest.main()
