#!/usr/bin/env python3
"""Publish-and-deliver throughput with a 1,000-rule policy file vs with allow-all, side by side in
one run (issue "Altinn fidelity": target >= 0.8). The deciding rule is the last of the 1,000, so every
decision passes the other 999 (the authorizer's index should make that cheap).

  test/bench/authz_bench.py [--seconds N] [--build DIR]

Needs wrk and a release build with server/hendelse and test/bench/bench-sink (test/bench/run makes
one in build-bench/)."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(args):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"(https?://[\d.]+:\d+)", line)
    if not m:
        p.kill()
        raise RuntimeError("no ready line from %s: %r" % (args[0], line))
    return p, m.group(1)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        out = p.stdout.read()
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        out = ""
    return out


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def run_one(build, seconds, policy, tmp):
    data = tempfile.mkdtemp(dir=tmp)
    sink, sink_url = start([os.path.join(build, "test/bench/bench-sink"), str(free_port())])
    args = [os.path.join(build, "server/hendelse"), "serve", "--dev", "--auth", "none",
            "--listen", "127.0.0.1:0", "--data", data, "--request-log", "off"]
    if policy:
        args += ["--authz", policy]
    srv, url = start(args)
    try:
        sub = post(url + "/events/api/v1/subscriptions",
                   {"endPoint": sink_url + "/hook", "resourceFilter": "urn:altinn:resource:bench"})
        for _ in range(100):
            with urllib.request.urlopen(url + "/events/api/v1/subscriptions/%d" % sub["id"]) as r:
                if json.loads(r.read())["validated"]:
                    break
            time.sleep(0.05)
        out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "-s",
                              os.path.join(HERE, "fanout.lua"), url + "/events/api/v1/events"],
                             capture_output=True, text=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        time.sleep(2)
    finally:
        stop(srv)
    rep = json.loads(stop(sink).strip().splitlines()[-1])
    span = max(1e-6, (rep["last_us"] - rep["first_us"]) / 1e6)
    return {"publish_rps": rps, "deliveries": rep["deliveries"],
            "deliveries_per_s": rep["deliveries"] / span}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rules = [{"effect": "permit", "actions": ["publish", "subscribe"],
                  "resource": "urn:altinn:resource:other-%d*" % i, "consumer": "/org/x%d" % i}
                 for i in range(999)]
        rules.append({"effect": "permit", "actions": ["publish", "subscribe", "read"],
                      "resource": "urn:altinn:resource:bench*", "consumer": "/org/*"})
        policy = os.path.join(tmp, "policy.json")
        with open(policy, "w") as f:
            json.dump({"rules": rules}, f)
        allow = run_one(a.build, a.seconds, None, tmp)
        pol = run_one(a.build, a.seconds, policy, tmp)
    print("allow-all:        publish %.0f/s, deliveries %.0f/s" % (allow["publish_rps"],
                                                                   allow["deliveries_per_s"]))
    print("1,000-rule policy: publish %.0f/s, deliveries %.0f/s" % (pol["publish_rps"],
                                                                    pol["deliveries_per_s"]))
    print("ratio publish %.2f, deliveries %.2f (target >= 0.8)" % (
        pol["publish_rps"] / allow["publish_rps"],
        pol["deliveries_per_s"] / allow["deliveries_per_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
