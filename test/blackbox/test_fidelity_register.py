"""The register table `--register FILE` (api.md §4, §5, §6): an app subscription's
alternativeSubjectFilter (`/person/{ssn}`, `/organisation/{orgno}`) becomes the subjectFilter
`/party/{id}` (an unknown one is a 400), and `includeSubunits`: a subscription on a main unit
(`/party/{id}` or `urn:altinn:organization:identifier-no:{orgno}`) also gets events on its sub-units, in
either form; without the flag it does not; the flag needs a subject filter. A register file that does not
load stops start-up (exit status 2, one line on stderr). A policy decides pushes of sub-unit events by
the event's own subject.
"""

import json
import os
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event, fresh_resource,  # noqa: E402
                     make_token, media_type, new_secret_file, run_cli)
from receiver import Receiver  # noqa: E402

ORGNO_ID = "urn:altinn:organization:identifier-no:"
QUIET = 0.8
SSN = "01038712345"

REGISTER = {"parties": [
    {"partyId": 50001, "ssn": SSN},
    {"partyId": 50003, "orgNo": "910000003", "mainUnit": 50002},
    {"partyId": 50002, "orgNo": "910000002"},
    {"partyId": 50004, "orgNo": "910000004", "mainUnit": 50002},
    {"partyId": 50006, "mainUnit": 50005},          # a sub-unit whose main unit is not listed
    {"partyId": 50007, "orgNo": "910000007"},
]}

SUBJECT_REQUIRED = "A valid subject to the authenticated identity is required"
SUBUNITS_NEED_SUBJECT = "IncludeSubunits requires a subject filter."


class RegisterTestBase(BBTestCase):
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-fidreg-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.register_file = os.path.join(cls.tmp.name, "register.json")
        with open(cls.register_file, "w") as f:
            json.dump(REGISTER, f)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server(
            "--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
            "--register", cls.register_file, "--retry-schedule", "50ms,100ms",
            "--validation-schedule", "100ms,100ms", *cls.extra_args())
        both = SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE
        cls.ttd = make_token(cls.secret, scope=both, org="ttd")
        cls.user = make_token(cls.secret, scope=both, org=None, **{"urn:altinn:userid": "1234"})

    @classmethod
    def extra_args(cls):
        return ["--authz", "allow-all"]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def create(self, body, tok=None):
        body = dict(body)
        body.setdefault("endPoint", self.recv.url(self.recv.unique_path("reg")))
        return self.srv.create_subscription(body, tok or self.ttd)

    def subscribe(self, tok=None, **body):
        path = self.recv.unique_path("reg")
        body["endPoint"] = self.recv.url(path)
        r = self.create(body, tok)
        self.assertStatus(r, 201)
        sub = r.json()
        got = self.srv.wait_validated(sub["id"], tok or self.ttd, timeout=10)
        self.assertTrue(got and got.get("validated") is True, "subscription %r never validated" % (sub,))
        return sub, path

    def assertJsonString(self, r, status, message):
        self.assertStatus(r, status)
        self.assertEqual(media_type(r.headers.get("content-type")), "application/json", repr(r))
        self.assertEqual(r.json(), message)

    def publish(self, ev):
        r = self.srv.publish(ev, self.ttd)
        self.assertStatus(r, 200)
        return ev

    def delivered(self, path):
        return sorted(r.json()["id"] for r in self.recv.events(path))


class AlternativeSubjectTest(RegisterTestBase):

    def app_resource(self):
        return "urn:altinn:resource:app_ttd_fid%s" % uuid.uuid4().hex[:8]

    def test_person_resolves_to_party(self):
        # a user (who needs a subject) and an org (who does not) alike
        for caller, tok in (("org", self.ttd), ("user", self.user)):
            with self.subTest(caller=caller):
                res = self.app_resource()
                r = self.create({"resourceFilter": res, "alternativeSubjectFilter": "/person/" + SSN}, tok)
                self.assertStatus(r, 201)
                sub = r.json()
                self.assertEqual(sub["subjectFilter"], "/party/50001")
                self.assertEqual(sub["resourceFilter"], res)
                # the stored subscription says the same
                got = self.srv.get_subscription(sub["id"], tok)
                self.assertStatus(got, 200)
                self.assertEqual(got.json()["subjectFilter"], "/party/50001")

    def test_organisation_resolves_to_party(self):
        for caller, tok in (("org", self.ttd), ("user", self.user)):
            with self.subTest(caller=caller):
                r = self.create({"resourceFilter": self.app_resource(),
                                 "alternativeSubjectFilter": "/organisation/910000002"}, tok)
                self.assertStatus(r, 201)
                self.assertEqual(r.json()["subjectFilter"], "/party/50002")

    def test_unknown_is_refused(self):
        for alt in ("/person/99999999999", "/person/" + SSN[:-1], "/organisation/999999999", "/person/",
                    "/organisation/910000002x", "/party/50001", "01038712345"):
            for tok in (self.user, self.ttd):
                r = self.create({"resourceFilter": self.app_resource(), "alternativeSubjectFilter": alt}, tok)
                self.assertJsonString(r, 400, SUBJECT_REQUIRED)

    def test_app_subscription_gets_the_party_events(self):
        res = self.app_resource()
        sub, path = self.subscribe(self.ttd, resourceFilter=res, alternativeSubjectFilter="/person/" + SSN)
        mine = self.publish(event(resource=res, subject="/party/50001"))
        self.publish(event(resource=res, subject="/party/50002"))
        self.publish(event(resource=res, subject="/person/" + SSN))
        self.assertEqual(self.recv.wait_event_ids([mine["id"]], path, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered(path), [mine["id"]])

    def test_generic_subscription_refuses_alternative_subject(self):
        r = self.create({"resourceFilter": fresh_resource("fidreg"), "alternativeSubjectFilter": "/person/" + SSN})
        self.assertJsonString(r, 400, "AlternativeSubject filter is not supported for subscriptions on this resource.")


class IncludeSubunitsTest(RegisterTestBase):

    def publish_set(self, res):
        """One event per subject form of every party of interest; returns {name: event}."""
        subjects = {
            "main-party": "/party/50002", "main-orgno": ORGNO_ID + "910000002",
            "sub3-party": "/party/50003", "sub3-orgno": ORGNO_ID + "910000003",
            "sub4-party": "/party/50004", "sub4-orgno": ORGNO_ID + "910000004",
            "person": "/party/50001", "other-unit": ORGNO_ID + "910000007",
            "sub6-party": "/party/50006", "unlisted-main": "/party/50005",
            "sub3-legacy": "/organisation/910000003", "sub3-zero": "/party/050003",
        }
        evs = {}
        for name, subject in subjects.items():
            evs[name] = self.publish(event(resource=res, subject=subject))
        evs["no-subject"] = self.publish(event(resource=res))
        return evs

    def check(self, expectations, evs):
        """expectations: list of (path, names); waits for all, then checks nothing else came."""
        for path, names in expectations:
            missing = self.recv.wait_event_ids([evs[n]["id"] for n in names], path, timeout=10)
            self.assertEqual(missing, set(), "%s: missing %r" % (path, sorted(n for n in names if evs[n]["id"] in missing)))
        time.sleep(QUIET)
        by_id = {e["id"]: n for n, e in evs.items()}
        for path, names in expectations:
            got = [by_id.get(r.json()["id"], "?") for r in self.recv.events(path)]
            self.assertEqual(sorted(got), sorted(names), "%s: each expected event exactly once" % path)

    def test_main_unit_gets_subunit_events(self):
        res = fresh_resource("fidsub")
        subs = {}
        for key, subject, flag in (("party+", "/party/50002", True), ("orgno+", ORGNO_ID + "910000002", True),
                                   ("party-", "/party/50002", False), ("orgno-", ORGNO_ID + "910000002", False),
                                   ("sub3+", "/party/50003", True), ("unlisted+", "/party/50005", True)):
            sub, path = self.subscribe(resourceFilter=res, subjectFilter=subject, includeSubunits=flag)
            self.assertIs(sub["includeSubunits"], flag)
            subs[key] = path
        evs = self.publish_set(res)
        subunit_events = ["sub3-party", "sub3-orgno", "sub4-party", "sub4-orgno"]
        self.check([
            (subs["party+"], ["main-party"] + subunit_events),
            (subs["orgno+"], ["main-orgno"] + subunit_events),
            (subs["party-"], ["main-party"]),
            (subs["orgno-"], ["main-orgno"]),
            (subs["sub3+"], ["sub3-party"]),                    # a sub-unit has no sub-units
            (subs["unlisted+"], ["unlisted-main", "sub6-party"]),
        ], evs)

    def test_flag_is_part_of_identity(self):
        # the same filters with and without includeSubunits are two subscriptions (api.md §4 step 10)
        res = fresh_resource("fidsub")
        body = {"endPoint": self.recv.url("/same"), "resourceFilter": res, "subjectFilter": "/party/50002"}
        a = self.srv.create_subscription(body, self.ttd)
        b = self.srv.create_subscription(dict(body, includeSubunits=True), self.ttd)
        c = self.srv.create_subscription(dict(body, includeSubunits=True), self.ttd)
        for r in (a, b, c):
            self.assertStatus(r, 201)
        self.assertNotEqual(a.json()["id"], b.json()["id"])
        self.assertEqual(b.json()["id"], c.json()["id"])
        self.assertIs(a.json()["includeSubunits"], False)
        self.assertIs(b.json()["includeSubunits"], True)

    def test_requires_subject_filter(self):
        r = self.create({"resourceFilter": fresh_resource("fidsub"), "includeSubunits": True})
        self.assertJsonString(r, 400, SUBUNITS_NEED_SUBJECT)
        r = self.create({"resourceFilter": "urn:altinn:resource:app_ttd_fidsub", "includeSubunits": True})
        self.assertJsonString(r, 400, SUBUNITS_NEED_SUBJECT)
        # false without a subject filter is fine
        r = self.create({"resourceFilter": fresh_resource("fidsub"), "includeSubunits": False})
        self.assertStatus(r, 201)


class SubunitRestartTest(RegisterTestBase):
    """includeSubunits is stored with the subscription: it still holds after a restart."""

    def test_survives_restart(self):
        res = fresh_resource("fidsubrs")
        sub, path = self.subscribe(resourceFilter=res, subjectFilter="/party/50002", includeSubunits=True)
        _, plain = self.subscribe(resourceFilter=res, subjectFilter="/party/50002")
        self.srv.restart()
        got = self.srv.get_subscription(sub["id"], self.ttd)
        self.assertStatus(got, 200)
        self.assertIs(got.json()["includeSubunits"], True)
        ev = self.publish(event(resource=res, subject=ORGNO_ID + "910000003"))
        self.assertEqual(self.recv.wait_event_ids([ev["id"]], path, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered(path), [ev["id"]])
        self.assertEqual(self.recv.events(plain), [])


class SubunitPolicyTest(RegisterTestBase):
    """includeSubunits with a policy: the push of a sub-unit event is decided on the event's subject."""

    @classmethod
    def extra_args(cls):
        cls.policy_file = os.path.join(cls.tmp.name, "policy.json")
        with open(cls.policy_file, "w") as f:
            json.dump({"rules": [
                {"effect": "deny", "actions": ["subscribe"], "resource": "*", "consumer": "/org/ttd",
                 "subject": "/party/50004"},
                {"effect": "permit", "actions": ["subscribe", "publish"], "resource": "*", "consumer": "*"},
            ]}, f)
        return ["--authz", cls.policy_file]

    def test_subunit_push_authorized_per_event(self):
        res = fresh_resource("fidsubpol")
        _, path = self.subscribe(resourceFilter=res, subjectFilter="/party/50002", includeSubunits=True)
        e2 = self.publish(event(resource=res, subject="/party/50002"))
        e3 = self.publish(event(resource=res, subject="/party/50003"))
        e4 = self.publish(event(resource=res, subject="/party/50004"))
        e4o = self.publish(event(resource=res, subject=ORGNO_ID + "910000004"))
        want = [e2["id"], e3["id"], e4o["id"]]
        self.assertEqual(self.recv.wait_event_ids(want, path, timeout=10), set())
        time.sleep(QUIET)
        self.assertEqual(self.delivered(path), sorted(want), "/party/50004 is denied to ttd: %s" % e4["id"])


class BrokenRegisterTest(BBTestCase):

    def test_broken_register_files(self):
        bad = {
            "bad-json": '{"parties": [',
            "root-array": "[]",
            "no-party-id": json.dumps({"parties": [{"ssn": SSN}]}),
            "zero-party-id": json.dumps({"parties": [{"partyId": 0}]}),
            "short-ssn": json.dumps({"parties": [{"partyId": 1, "ssn": "123"}]}),
            "long-orgno": json.dumps({"parties": [{"partyId": 1, "orgNo": "9100000021"}]}),
            "dup-party": json.dumps({"parties": [{"partyId": 1}, {"partyId": 1}]}),
            "dup-ssn": json.dumps({"parties": [{"partyId": 1, "ssn": SSN}, {"partyId": 2, "ssn": SSN}]}),
            "self-main": json.dumps({"parties": [{"partyId": 1, "mainUnit": 1}]}),
            "unknown-key": json.dumps({"parties": [{"partyId": 1, "name": "x"}]}),
        }
        with tempfile.TemporaryDirectory(prefix="hendelse-bb-fidreg-") as d:
            for name, text in sorted(bad.items()):
                path = os.path.join(d, "register-%s.json" % name)
                with open(path, "w") as f:
                    f.write(text)
                code, out, err = run_cli("serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"),
                                         "--auth", "none", "--authz", "allow-all", "--register", path, timeout=5)
                self.assertEqual(code, 2, "%s: exit %r (stdout %r, stderr %r)" % (name, code, out, err))
                self.assertNotIn("listening", out)
                lines = err.strip("\n").split("\n")
                self.assertEqual(len(lines), 1, "%s: one line on stderr: %r" % (name, err))
                self.assertIn(os.path.basename(path), lines[0], "%s: the line names the file: %r" % (name, err))
            # a valid register file starts (and an empty parties list is valid)
            for name, doc in (("good", REGISTER), ("empty", {"parties": []})):
                path = os.path.join(d, "register-%s.json" % name)
                with open(path, "w") as f:
                    json.dump(doc, f)
                srv = self.start_server("--auth", "none", "--authz", "allow-all", "--register", path)
                self.assertTrue(srv.running())


if __name__ == "__main__":
    unittest.main()
