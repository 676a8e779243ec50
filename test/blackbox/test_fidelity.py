"""The policy authorizer `--authz FILE` (api.md §1, §2, §4, §5, §6): one policy exercised for every
action. publish (403 empty body when denied, the admin scope skips the check, the consumer of each token
kind), subscribe on GET (unauthorized events skipped, the page filled from later events, the `next` cursor
moving past a whole page of unauthorized events, also past more than the 10,000 events one request
examines), subscribe at subscription create (exact 403 message; a subject rule checked against the
subjectFilter, skipped without one), subscribe per push (only authorized consumers' receivers get an
event; `{consumer}` in subject rules), read (the app events API). Broken policy files stop start-up with
exit status 2 and one line on stderr.

Every decision is per event: the policy never changes while a server runs, and each test asserts, event
by event, which are let through.
"""

import json
import os
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_PUBLISH_ADMIN, SCOPE_SUBSCRIBE,  # noqa: E402
                     event, make_token, media_type, new_secret_file, run_cli, token)
from receiver import Receiver  # noqa: E402

R = "urn:altinn:resource:"
SYSUSER = "5e1c3a52-2d35-4a3a-9b5e-6c1f0d9e8a11"
ORGNO_ID = "urn:altinn:organization:identifier-no:"
QUIET = 0.8            # seconds to wait to be sure no more deliveries come
BATCH_CT = "application/cloudevents-batch+json"

POLICY = {"rules": [
    # ---- publish
    {"effect": "deny", "actions": ["publish"], "resource": R + "fid-pubdeny-*", "consumer": "*"},
    {"effect": "deny", "actions": ["publish"], "resource": R + "fid-*", "consumer": "*", "subject": "/forbidden/*"},
    {"effect": "permit", "actions": ["publish"], "resource": R + "fid-*", "consumer": "/org/ttd"},
    {"effect": "permit", "actions": ["publish"], "resource": R + "fid-user-*", "consumer": "/user/1234"},
    {"effect": "permit", "actions": ["publish"], "resource": R + "fid-sysuser-*", "consumer": "/systemuser/" + SYSUSER},
    {"effect": "permit", "actions": ["publish"], "resource": R + "fid-orgno-*", "consumer": "/organisation/910000002"},
    # ---- subscribe
    {"effect": "deny", "actions": ["subscribe"], "resource": R + "fid-subdeny-*", "consumer": "*"},
    {"effect": "deny", "actions": ["subscribe"], "resource": R + "fid-*", "consumer": "/org/skd", "subject": "/hidden/*"},
    {"effect": "deny", "actions": ["subscribe"], "resource": R + "fid-push-*", "consumer": "/org/skd", "subject": "*"},
    {"effect": "permit", "actions": ["subscribe"], "resource": R + "fid-own-*", "consumer": "/organisation/*",
     "subject": ORGNO_ID + "{consumer}"},
    {"effect": "deny", "actions": ["subscribe"], "resource": R + "fid-own-*", "consumer": "*", "subject": "*"},
    {"effect": "deny", "actions": ["subscribe"], "resource": R + "app_ttd_fiddeny*", "consumer": "*"},
    # ---- read (app events)
    {"effect": "deny", "actions": ["read"], "resource": R + "app_ttd_fidread*", "consumer": "*", "subject": "/party/666"},
    {"effect": "deny", "actions": ["read"], "resource": R + "app_ttd_fidread*", "consumer": "/org/skd"},
    # ---- everything else subscribe/read: permitted
    {"effect": "permit", "actions": ["subscribe", "read"], "resource": "*", "consumer": "*"},
]}


def res(prefix):
    return R + "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class PolicyTestBase(BBTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-fid-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.policy_file = os.path.join(cls.tmp.name, "policy.json")
        with open(cls.policy_file, "w") as f:
            json.dump(POLICY, f, indent=1)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", cls.policy_file,
            "--retry-schedule", "50ms,100ms", "--validation-schedule", "100ms,100ms")
        both = SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE
        cls.ttd = make_token(cls.secret, scope=both, org="ttd")
        cls.skd = make_token(cls.secret, scope=both, org="skd")
        cls.nav = make_token(cls.secret, scope=both, org="nav")
        cls.admin = make_token(cls.secret, scope=SCOPE_PUBLISH_ADMIN + " " + SCOPE_SUBSCRIBE, org="nav")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def tok(self, **kw):
        kw.setdefault("scope", SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)
        return make_token(self.secret, **kw)

    def publish_ok(self, ev, tok=None):
        r = self.srv.publish(ev, tok or self.ttd)
        self.assertStatus(r, 200)
        return ev

    def publish_batch(self, evs, tok):
        for i in range(0, len(evs), 250):
            r = self.srv.publish(json.dumps(evs[i:i + 250]), tok, content_type=BATCH_CT)
            self.assertStatus(r, 200)

    def poll_ids(self, resource, tok, query=""):
        r = self.srv.poll("resource=%s&after=0&size=1000%s" % (resource, query), tok)
        return [e["id"] for e in self.assertPollPage(r)]

    def subscribe(self, resource, tok, path=None, **filters):
        path = path or self.recv.unique_path("fid")
        body = {"endPoint": self.recv.url(path), "resourceFilter": resource}
        body.update(filters)
        r = self.srv.create_subscription(body, tok)
        self.assertStatus(r, 201)
        sub = r.json()
        got = self.srv.wait_validated(sub["id"], tok, timeout=10)
        self.assertTrue(got and got.get("validated") is True, "subscription %r never validated" % (sub,))
        return sub, path

    def assertSubscribeDenied(self, resource, tok, **filters):
        body = {"endPoint": self.recv.url(self.recv.unique_path("denied")), "resourceFilter": resource}
        body.update(filters)
        r = self.srv.create_subscription(body, tok)
        self.assertStatus(r, 403)
        self.assertEqual(media_type(r.headers.get("content-type")), "application/json", repr(r))
        self.assertEqual(r.json(), "Not authorized to create a subscription for resource %s." % resource)

    def delivered_ids(self, path):
        return sorted(r.json()["id"] for r in self.recv.events(path))


class PublishPolicyTest(PolicyTestBase):

    def assertPublishDenied(self, ev, tok, what=""):
        r = self.srv.publish(ev, tok)
        self.assertEqual(r.status, 403, "%s: %r" % (what, r))
        self.assertEqual(r.body, b"", "%s: 403 has an empty body" % what)
        self.assertEqual(self.poll_ids(ev["resource"], self.ttd), [], "%s: nothing stored" % what)

    def test_permitted_and_denied_by_resource(self):
        ev = self.publish_ok(event(resource=res("fid-pub")))
        self.assertEqual(self.poll_ids(ev["resource"], self.ttd), [ev["id"]])
        # a deny rule before the permit wins
        self.assertPublishDenied(event(resource=res("fid-pubdeny")), self.ttd, "deny rule on the resource")
        # no rule at all for nav: default deny
        self.assertPublishDenied(event(resource=res("fid-pub")), self.nav, "no matching rule")
        # a resource outside fid-*: no rule for anyone
        self.assertPublishDenied(event(resource=res("other")), self.ttd, "resource outside the permit glob")

    def test_denied_by_subject(self):
        r = res("fid-pubsubj")
        self.assertPublishDenied(event(resource=r, subject="/forbidden/1"), self.ttd, "subject rule")
        # the glob needs the prefix: a subject that merely contains it is not denied
        self.publish_ok(event(resource=r, subject="/x/forbidden/1"))
        self.publish_ok(event(resource=r, subject="/forbidden"))
        self.publish_ok(event(resource=r))
        self.assertEqual(len(self.poll_ids(r, self.ttd)), 3)

    def test_batch_all_or_nothing(self):
        r = res("fid-pubbatch")
        evs = [event(resource=r, subject="/party/%d" % i) for i in range(3)]
        evs.append(event(resource=r, subject="/forbidden/x"))
        resp = self.srv.publish(json.dumps(evs), self.ttd, content_type=BATCH_CT)
        self.assertStatus(resp, 403)
        self.assertEqual(resp.body, b"")
        self.assertEqual(self.poll_ids(r, self.ttd), [], "one denied event refuses the whole batch")

    def test_admin_scope_skips_check(self):
        ev = event(resource=res("fid-pubdeny"), subject="/forbidden/1")
        self.publish_ok(ev, self.admin)
        self.assertEqual(self.poll_ids(ev["resource"], self.admin), [ev["id"]])

    def test_platform_access_token_still_authorized(self):
        # the PlatformAccessToken stands in for the publish scope only: the policy still decides,
        # for the consumer of the bearer token
        pat = token("--secret-file", self.secret_file, "--app", "ttd/fidapp")
        ttd = self.tok(scope=SCOPE_SUBSCRIBE, org="ttd")
        nav = self.tok(scope=SCOPE_SUBSCRIBE, org="nav")
        h = {"PlatformAccessToken": pat}
        ev = event(resource=res("fid-pat"))
        self.assertStatus(self.srv.publish(ev, ttd, headers=h), 200)
        self.assertEqual(self.poll_ids(ev["resource"], self.ttd), [ev["id"]])
        self.assertStatus(self.srv.publish(event(resource=res("fid-pat")), ttd), 403)
        for tok, ev in ((ttd, event(resource=res("fid-pubdeny"))), (nav, event(resource=res("fid-pat"))),
                        (ttd, event(resource=res("fid-pat"), subject="/forbidden/1"))):
            r = self.srv.publish(ev, tok, headers=h)
            self.assertStatus(r, 403)
            self.assertEqual(r.body, b"")
            self.assertEqual(self.poll_ids(ev["resource"], self.ttd), [])

    def test_consumer_of_each_token_kind(self):
        cases = [
            # (token, resource prefix, permitted?)
            (self.tok(org=None, **{"urn:altinn:userid": "1234"}), "fid-user", True),
            (self.tok(org=None, **{"urn:altinn:userid": 1234}), "fid-user", True),           # a number claim
            (self.tok(org=None, **{"urn:altinn:userid": "1235"}), "fid-user", False),
            (self.tok(org="nav", **{"urn:altinn:userid": "1234"}), "fid-user", False),       # org wins: /org/nav
            (self.tok(org=None, **{"urn:altinn:orgNumber": "910000002"}), "fid-orgno", True),
            (self.tok(org=None, **{"urn:altinn:orgNumber": "910000003"}), "fid-orgno", False),
            (self.tok(org=None, **{"urn:altinn:userid": "1234"}, **{"urn:altinn:orgNumber": "910000002"}), "fid-orgno", False),
            (self.tok(org=None, **{"urn:altinn:userid": "1234"}, **{"urn:altinn:orgNumber": "910000002"}), "fid-user", True),
            (self.tok(org=None, authorization_details={"type": "urn:altinn:systemuser",
                                                       "systemuser_id": [SYSUSER]}), "fid-sysuser", True),
            (self.tok(org=None, authorization_details={"type": "urn:altinn:systemuser",
                                                       "systemuser_id": [SYSUSER]},
                      **{"urn:altinn:orgNumber": "910000002"}), "fid-orgno", False),  # systemuser wins
            (token("--secret-file", self.secret_file, "--scope", SCOPE_PUBLISH, "--systemuser", SYSUSER),
             "fid-sysuser", True),
            (token("--secret-file", self.secret_file, "--scope", SCOPE_PUBLISH, "--orgno", "910000002"),
             "fid-orgno", True),
            (token("--secret-file", self.secret_file, "--scope", SCOPE_PUBLISH, "--userid", "1234"),
             "fid-user", True),
        ]
        for i, (tok, prefix, permitted) in enumerate(cases):
            ev = event(resource=res(prefix))
            r = self.srv.publish(ev, tok)
            self.assertEqual(r.status, 200 if permitted else 403, "case %d (%s): %r" % (i, prefix, r))
            self.assertEqual(self.poll_ids(ev["resource"], self.ttd), [ev["id"]] if permitted else [],
                             "case %d" % i)


class PollPolicyTest(PolicyTestBase):

    def test_page_filled_past_unauthorized(self):
        r = res("fid-poll")
        hidden = [event(resource=r, subject="/hidden/%d" % i) for i in range(50)]
        shown = [event(resource=r, subject="/party/%d" % i) for i in range(10)]
        self.publish_batch(hidden + shown, self.ttd)
        resp = self.srv.poll("resource=%s&after=0&size=50" % r, self.skd)
        page = self.assertPollPage(resp)
        self.assertEqual([e["id"] for e in page], [e["id"] for e in shown],
                         "only the authorized events, read on past the 50 unauthorized ones")
        self.assertEqual(resp.headers.get("next"),
                         "%s/events/api/v1/events?after=%s&resource=%s&size=50"
                         % (self.srv.base_url, shown[-1]["id"], r))
        # the next page is empty and ends the feed
        resp = self.srv.poll("resource=%s&after=%s&size=50" % (r, shown[-1]["id"]), self.skd)
        self.assertEqual(self.assertPollPage(resp), [])
        self.assertNotIn("next", resp.headers)
        # the same events for a consumer without the deny rule: all 60, in order
        events, _ = self.srv.poll_all("resource=%s&after=0&size=50" % r, self.ttd)
        self.assertEqual([e["id"] for e in events], [e["id"] for e in hidden + shown])
        # a subject query on an unauthorized subject finds nothing
        self.assertEqual(self.poll_ids(r, self.skd, "&subject=/hidden/3"), [])
        self.assertEqual(self.poll_ids(r, self.ttd, "&subject=/hidden/3"), [hidden[3]["id"]])

    def test_per_event_interleaved(self):
        r = res("fid-inter")
        evs = []
        for i in range(40):
            subj = ["/hidden/%d" % i, "/party/%d" % i, None, "/hiddenx/%d" % i][i % 4]
            evs.append(event(resource=r, subject=subj))
        self.publish_batch(evs, self.ttd)
        want = [e["id"] for e in evs if not (e.get("subject") or "").startswith("/hidden/")]
        self.assertEqual(len(want), 30)
        # size 7: pages fill past the denied ones, and the links chain through all of them
        events, pages = self.srv.poll_all("resource=%s&after=0&size=7" % r, self.skd)
        self.assertEqual([e["id"] for e in events], want)
        self.assertTrue(all(len(p.json()) <= 7 for p in pages))
        # the policy is not cached per subject or per request: ask again, same answer
        self.assertEqual(self.poll_ids(r, self.skd), want)

    def test_cursor_moves_past_scan_limit(self):
        # 10,050 unauthorized events, then one authorized: the first request examines 10,000 events,
        # finds none it may return, and still sends `next`, pointing past the last one it examined
        r = res("fid-scan")
        hidden = [{"specversion": "1.0", "id": "h%05d" % i, "source": "https://example.com/s", "type": "t",
                   "resource": r, "subject": "/hidden/%d" % i} for i in range(10050)]
        shown = event(resource=r, subject="/party/1")
        self.publish_batch(hidden + [shown], self.ttd)
        resp = self.srv.poll("resource=%s&after=0&size=50" % r, self.skd)
        self.assertEqual(self.assertPollPage(resp), [])
        nxt = resp.headers.get("next")
        self.assertIsNotNone(nxt, "an empty page that did not reach the end carries next: %r" % (resp,))
        self.assertEqual(nxt, "%s/events/api/v1/events?after=%s&resource=%s&size=50"
                         % (self.srv.base_url, hidden[9999]["id"], r),
                         "next points past the 10,000th (the last examined) event")
        # following the links reaches the authorized event
        got, hops = [], 0
        while nxt and hops < 10:
            resp = self.srv.keepalive_request("GET", self.srv.path_of(nxt), None,
                                              {"Authorization": "Bearer " + self.skd})
            got.extend(e["id"] for e in self.assertPollPage(resp))
            nxt = resp.headers.get("next")
            hops += 1
        self.assertEqual(got, [shown["id"]])
        self.assertLessEqual(hops, 3)
        # the same bound for a subject query that matches none of the first 10,000 events
        resp = self.srv.poll("resource=%s&after=0&subject=/party/1" % r, self.ttd)
        self.assertEqual(self.assertPollPage(resp), [])
        self.assertEqual(resp.headers.get("next"), "%s/events/api/v1/events?after=%s&resource=%s&subject=/party/1"
                         % (self.srv.base_url, hidden[9999]["id"], r))
        resp = self.srv.keepalive_request("GET", self.srv.path_of(resp.headers["next"]), None,
                                          {"Authorization": "Bearer " + self.ttd})
        self.assertEqual([e["id"] for e in self.assertPollPage(resp)], [shown["id"]])
        # a consumer that may see them all gets the first 50 hidden ones at once
        page = self.assertPollPage(self.srv.poll("resource=%s&after=0&size=50" % r, self.ttd))
        self.assertEqual([e["id"] for e in page], [e["id"] for e in hidden[:50]])


class SubscribePolicyTest(PolicyTestBase):

    def test_create_denied_exact_message(self):
        for tok in (self.ttd, self.skd, self.nav):
            self.assertSubscribeDenied(res("fid-subdeny"), tok)
        # the denied resource as given, also with a subject filter and a type filter
        self.assertSubscribeDenied(res("fid-subdeny"), self.ttd, subjectFilter="/party/1", typeFilter="a.b")

    def test_create_denied_app_subscription_names_derived_resource(self):
        app = "fiddeny" + uuid.uuid4().hex[:8]
        body = {"endPoint": self.recv.url(self.recv.unique_path("denied")),
                "sourceFilter": "https://ttd.apps.altinn.no/ttd/" + app}
        r = self.srv.create_subscription(body, self.ttd)
        self.assertStatus(r, 403)
        self.assertEqual(r.json(), "Not authorized to create a subscription for resource %sapp_ttd_%s." % (R, app))
        self.assertSubscribeDenied(R + "app_ttd_" + app, self.ttd)

    def test_subject_rule_against_subject_filter(self):
        r = res("fid-subj")
        self.assertSubscribeDenied(r, self.skd, subjectFilter="/hidden/7")
        self.subscribe(r, self.skd, subjectFilter="/party/7")
        self.subscribe(r, self.ttd, subjectFilter="/hidden/7")       # the rule is for skd only
        # without a subject filter the subject rule is skipped at create (checked per push instead)
        self.subscribe(r, self.skd)

    def test_push_only_to_authorized_consumer(self):
        # both subscribe without a subject filter (the subject rule is skipped at create); every push
        # to skd is then denied by the rule with subject "*", ttd's are permitted
        r = res("fid-push")
        _, p_ttd = self.subscribe(r, self.ttd)
        _, p_skd = self.subscribe(r, self.skd)
        self.assertSubscribeDenied(r, self.skd, subjectFilter="/party/1")
        evs = [self.publish_ok(event(resource=r, subject="/party/1")), self.publish_ok(event(resource=r))]
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], p_ttd, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered_ids(p_ttd), sorted(e["id"] for e in evs))
        self.assertEqual(self.recv.events(p_skd), [], "no push to a consumer the policy denies")

    def test_push_decided_per_event(self):
        r = res("fid-pushsubj")
        _, p_skd = self.subscribe(r, self.skd)
        _, p_ttd = self.subscribe(r, self.ttd)
        evs = []
        for i in range(12):
            subj = ["/hidden/%d" % i, "/party/%d" % i, None][i % 3]
            evs.append(self.publish_ok(event(resource=r, subject=subj)))
        want_skd = sorted(e["id"] for e in evs if not (e.get("subject") or "").startswith("/hidden/"))
        self.assertEqual(self.recv.wait_event_ids(want_skd, p_skd, timeout=10), set())
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], p_ttd, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered_ids(p_skd), want_skd)
        self.assertEqual(self.delivered_ids(p_ttd), sorted(e["id"] for e in evs))

    def test_consumer_placeholder_in_subject(self):
        r = res("fid-own")
        t2 = self.tok(org=None, **{"urn:altinn:orgNumber": "910000002"})
        t3 = self.tok(org=None, **{"urn:altinn:orgNumber": "910000003"})
        # at create: a subject filter must be the caller's own unit
        self.subscribe(r, t2, subjectFilter=ORGNO_ID + "910000002")
        self.assertSubscribeDenied(r, t2, subjectFilter=ORGNO_ID + "910000003")
        self.assertSubscribeDenied(r, t3, subjectFilter=ORGNO_ID + "910000002")
        self.assertSubscribeDenied(r, self.ttd, subjectFilter=ORGNO_ID + "ttd")  # not an /organisation/
        # without a filter: created, and each push goes only to the unit the event is about
        _, p2 = self.subscribe(r, t2)
        _, p3 = self.subscribe(r, t3)
        e2 = self.publish_ok(event(resource=r, subject=ORGNO_ID + "910000002"))
        e3 = self.publish_ok(event(resource=r, subject=ORGNO_ID + "910000003"))
        others = [self.publish_ok(event(resource=r, subject=s))
                  for s in ("/party/50002", ORGNO_ID + "9100000020", ORGNO_ID, None)]
        self.assertEqual(self.recv.wait_event_ids([e2["id"]], p2, timeout=10), set())
        self.assertEqual(self.recv.wait_event_ids([e3["id"]], p3, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered_ids(p2), [e2["id"]], "only the event on its own unit: %r"
                         % [e["subject"] if "subject" in e else None for e in others])
        self.assertEqual(self.delivered_ids(p3), [e3["id"]])
        # the same decisions on GET
        self.assertEqual(self.poll_ids(r, t2), [e2["id"]])
        self.assertEqual(self.poll_ids(r, t3), [e3["id"]])

    def test_consumer_placeholder_is_literal(self):
        # a '*' in the consumer id is text, not a wildcard, when it stands in for {consumer}
        r = res("fid-own")
        star = self.tok(org=None, **{"urn:altinn:orgNumber": "*"})
        self.assertSubscribeDenied(r, star, subjectFilter=ORGNO_ID + "910000002")
        self.subscribe(r, star, subjectFilter=ORGNO_ID + "*")


class ReadPolicyTest(PolicyTestBase):

    def test_app_events_read_filtered(self):
        app = "fidread" + uuid.uuid4().hex[:8]
        r = R + "app_ttd_" + app
        evs = [event(resource=r, subject=s, source="https://ttd.apps.example.com/ttd/%s/instances/1/x" % app)
               for s in ("/party/1", "/party/666", "/party/2")]
        for ev in evs:
            self.publish_ok(ev, self.admin)
        path = "/events/api/v1/app/ttd/%s?after=0" % app
        resp = self.srv.request("GET", path, None, {"Authorization": "Bearer " + self.ttd})
        self.assertStatus(resp, 200)
        self.assertEqual([e["id"] for e in resp.json()], [evs[0]["id"], evs[2]["id"]],
                         "the read rule on /party/666 hides that event")
        resp = self.srv.request("GET", path, None, {"Authorization": "Bearer " + self.skd})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json(), [], "skd may read nothing of this app")
        # read and subscribe are separate actions: the generic query is not filtered by read rules
        self.assertEqual(self.poll_ids(r, self.ttd), [e["id"] for e in evs])
        self.assertEqual(self.poll_ids(r, self.skd), [e["id"] for e in evs])


class BrokenPolicyTest(BBTestCase):

    def test_broken_policy_files(self):
        rule = {"effect": "permit", "actions": ["publish"], "resource": "*", "consumer": "*"}
        bad = {
            "bad-json": '{"rules": [',
            "not-json": "rules: []",
            "empty-file": "",
            "root-array": "[]",
            "no-rules": "{}",
            "rules-not-array": '{"rules": {}}',
            "unknown-action": json.dumps({"rules": [dict(rule, actions=["publish", "delete"])]}),
            "bad-effect": json.dumps({"rules": [dict(rule, effect="allow")]}),
            "effect-case": json.dumps({"rules": [dict(rule, effect="Permit")]}),
            "no-effect": json.dumps({"rules": [{k: v for k, v in rule.items() if k != "effect"}]}),
            "no-resource": json.dumps({"rules": [{k: v for k, v in rule.items() if k != "resource"}]}),
            "no-consumer": json.dumps({"rules": [{k: v for k, v in rule.items() if k != "consumer"}]}),
            "empty-actions": json.dumps({"rules": [dict(rule, actions=[])]}),
            "actions-string": json.dumps({"rules": [dict(rule, actions="publish")]}),
            "unknown-key": json.dumps({"rules": [dict(rule, resources="*")]}),
            "subject-number": json.dumps({"rules": [dict(rule, subject=5)]}),
            "trailing-garbage": json.dumps({"rules": [rule]}) + " x",
        }
        with tempfile.TemporaryDirectory(prefix="hendelse-bb-fidpol-") as d:
            for name, text in sorted(bad.items()):
                path = os.path.join(d, "policy-%s.json" % name)
                with open(path, "w") as f:
                    f.write(text)
                self.assertStartFails(d, path, name)
            self.assertStartFails(d, os.path.join(d, "missing.json"), "missing file")
            # the same policy with a valid rule starts
            good = os.path.join(d, "good.json")
            with open(good, "w") as f:
                json.dump({"rules": [rule]}, f)
            srv = self.start_server("--auth", "none", "--authz", good)
            self.assertTrue(srv.running())
            # an empty rules list is a valid policy that denies everything
            empty = os.path.join(d, "empty.json")
            with open(empty, "w") as f:
                json.dump({"rules": []}, f)
            srv = self.start_server("--auth", "none", "--authz", empty)
            ev = event(resource="urn:altinn:resource:fid-empty")
            r = srv.publish(ev, headers={"Content-Type": "application/cloudevents+json"})
            self.assertStatus(r, 200)  # the --auth none identity has the admin scope: no publish check
            self.assertEqual(srv.poll("resource=%s&after=0" % ev["resource"]).json(), [],
                             "subscribe is denied for every event")

    def assertStartFails(self, d, path, what):
        code, out, err = run_cli("serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"),
                                 "--auth", "none", "--authz", path, timeout=5)
        self.assertEqual(code, 2, "%s: exit %r (stdout %r, stderr %r)" % (what, code, out, err))
        self.assertNotIn("listening", out, what)
        lines = err.strip("\n").split("\n")
        self.assertEqual(len(lines), 1, "%s: one line on stderr: %r" % (what, err))
        self.assertTrue(lines[0].strip(), what)
        self.assertIn(os.path.basename(path), lines[0], "%s: the line names the file: %r" % (what, err))


if __name__ == "__main__":
    unittest.main()
