"""Subscriptions (api.md §4): every create rule and its message, in the order the contract gives them;
the subscription JSON; ownership (403/404) between two orgs; list; delete; deduplication.

Servers run with `--auth jwt` so the caller's identity is under the test's control. The development
profile server points its endpoints at a local receiver (the handshakes land there, harmlessly); the
production profile server gets https endpoints under `.invalid` (never resolvable) where it must accept.
"""

import os
import re
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, JSON_UTF8, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, SUBS_PATH,  # noqa: E402
                     fresh_resource, make_token, new_secret_file, token)
from receiver import Receiver  # noqa: E402

MSG_ENDPOINT = "Missing or invalid endpoint to push events towards"
MSG_SOURCE_HTTPS = "SourceFilter must be an absolute URL with the https scheme."
MSG_URN = "Resource filter must be a valid urn"
MSG_CONSUMER = "Missing event consumer"
MSG_SUBJECT_REQUIRED = "A valid subject to the authenticated identity is required"
MSG_APP_ID = "A valid app id is required in source filter {environment}/{org}/{app}"
MSG_INCOMPATIBLE = "Provided resource filter and source filter are not compatible"
MSG_RESOURCE_REQUIRED = "Resource filter is required."
MSG_SOURCE_NOT_SUPPORTED = "Source filter is not supported for subscriptions on this resource."
MSG_ALTSUBJECT_NOT_SUPPORTED = "AlternativeSubject filter is not supported for subscriptions on this resource."
MSG_SUBUNITS = "IncludeSubunits requires a subject filter."

APP_RESOURCE = "urn:altinn:resource:app_ttd_myapp"
APP_SOURCE = "https://ttd.apps.altinn.no/ttd/myapp"

CREATED_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
SUB_KEYS = {"id", "endPoint", "resourceFilter", "subjectFilter", "typeFilter", "sourceFilter",
            "alternativeSubjectFilter", "consumer", "createdBy", "created", "validated", "includeSubunits"}
REQUIRED_KEYS = {"id", "endPoint", "consumer", "createdBy", "created", "validated", "includeSubunits"}


class SubsTestBase(BBTestCase):
    """Shared assertions for subscription answers."""

    def assertJsonString(self, resp, status, message):
        self.assertStatus(resp, status)
        self.assertEqual(resp.headers.get("content-type"), JSON_UTF8,
                         "a JSON string error body has Content-Type application/json; charset=utf-8: %r"
                         % (resp,))
        try:
            body = resp.json()
        except ValueError:
            self.fail("body is not JSON: %r" % (resp,))
        self.assertEqual(body, message, repr(resp))

    def assertCreated(self, resp):
        """201 with a Location naming the id and a well-formed subscription body; returns the body."""
        self.assertStatus(resp, 201)
        self.assertEqual((resp.headers.get("content-type") or "").split(";")[0].strip(), "application/json",
                         repr(resp))
        sub = resp.json()
        self.assertIsInstance(sub, dict)
        self.assertTrue(REQUIRED_KEYS <= set(sub), "missing keys in %r" % (sub,))
        self.assertTrue(set(sub) <= SUB_KEYS, "unexpected keys in %r" % (sub,))
        for k, v in sub.items():
            self.assertIsNotNone(v, "null fields are left out: %r" % (sub,))
        self.assertIsInstance(sub["id"], int)
        self.assertNotIsInstance(sub["id"], bool)
        self.assertGreater(sub["id"], 0)
        self.assertEqual(resp.headers.get("location"), "%s/%d" % (SUBS_PATH, sub["id"]), repr(resp))
        self.assertRegex(sub["created"], CREATED_RE)
        self.assertIsInstance(sub["validated"], bool)
        self.assertIsInstance(sub["includeSubunits"], bool)
        self.assertEqual(sub["createdBy"], sub["consumer"])
        return sub


class CreateRulesTest(SubsTestBase):
    """Development profile (http endpoints allowed), `--auth jwt`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-subs-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.srv = cls.start_class_server("--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--authz", "allow-all", "--validation-schedule", "100ms")
        s = cls.secret
        cls.ttd = make_token(s, scope=SCOPE_SUBSCRIBE, org="ttd")
        cls.skd = make_token(s, scope=SCOPE_SUBSCRIBE, org="skd")
        cls.noscope = make_token(s, scope=SCOPE_PUBLISH, org="ttd")
        cls.noconsumer = make_token(s, scope=SCOPE_SUBSCRIBE, org=None)
        cls.noconsumer_noscope = make_token(s, scope=SCOPE_PUBLISH, org=None)
        cls.user = make_token(s, scope=SCOPE_SUBSCRIBE, org=None,
                              **{"urn:altinn:userid": "1337", "urn:altinn:partyid": "50001337"})
        cls.orgno = make_token(s, scope=SCOPE_SUBSCRIBE, org=None, **{"urn:altinn:orgNumber": "991825827"})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    def ep(self):
        return self.recv.url(self.recv.unique_path("subs"))

    def create(self, body, tok=None, **kw):
        return self.srv.create_subscription(body, self.ttd if tok is None else tok, **kw)

    # --- success and the subscription JSON ------------------------------------------------------

    def test_create_generic_shape(self):
        res = fresh_resource()
        ep = self.ep()
        r = self.create({"endPoint": ep, "resourceFilter": res})
        sub = self.assertCreated(r)
        self.assertEqual(sub["endPoint"], ep)
        self.assertEqual(sub["resourceFilter"], res)
        self.assertEqual(sub["consumer"], "/org/ttd")
        self.assertEqual(sub["createdBy"], "/org/ttd")
        self.assertIs(sub["validated"], False)
        self.assertIs(sub["includeSubunits"], False)
        for absent in ("subjectFilter", "typeFilter", "sourceFilter", "alternativeSubjectFilter"):
            self.assertNotIn(absent, sub, "absent filters are left out")
        g = self.srv.get_subscription(sub["id"], self.ttd)
        self.assertStatus(g, 200)
        got = g.json()
        got.pop("validated")
        want = dict(sub)
        want.pop("validated")
        self.assertEqual(got, want)

    def test_create_all_filters_echoed(self):
        res = fresh_resource()
        ep = self.ep()
        sub = self.assertCreated(self.create({"endPoint": ep, "resourceFilter": res, "subjectFilter": "/party/1",
                                              "typeFilter": "thing.created", "includeSubunits": True}))
        self.assertEqual(sub["subjectFilter"], "/party/1")
        self.assertEqual(sub["typeFilter"], "thing.created")
        self.assertIs(sub["includeSubunits"], True)
        self.assertEqual(sub["resourceFilter"], res)

    def test_property_names_case_insensitive(self):
        res = fresh_resource()
        ep = self.ep()
        sub = self.assertCreated(self.create({"ENDPOINT": ep, "resourcefilter": res, "SubjectFilter": "/party/2",
                                              "TYPEFILTER": "x.y"}))
        self.assertEqual((sub["endPoint"], sub["resourceFilter"], sub["subjectFilter"], sub["typeFilter"]),
                         (ep, res, "/party/2", "x.y"))
        sub2 = self.assertCreated(self.create({"endpoint": ep, "resourceFilter": fresh_resource()}))
        self.assertEqual(sub2["endPoint"], ep)

    def test_server_set_fields_ignored(self):
        res = fresh_resource()
        r = self.create({"endPoint": self.ep(), "resourceFilter": res, "id": 987654321, "consumer": "/org/evil",
                         "createdBy": "/org/evil", "created": "2001-01-01T00:00:00Z", "validated": True})
        sub = self.assertCreated(r)
        self.assertNotEqual(sub["id"], 987654321)
        self.assertEqual(sub["consumer"], "/org/ttd")
        self.assertEqual(sub["createdBy"], "/org/ttd")
        self.assertNotEqual(sub["created"], "2001-01-01T00:00:00Z")
        self.assertFalse(sub["created"].startswith("2001-"))
        self.assertIs(sub["validated"], False)

    def test_content_type_charset_accepted(self):
        r = self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()},
                        content_type="application/json; charset=utf-8")
        self.assertCreated(r)

    def test_dev_profile_accepts_http_endpoint(self):
        ep = "http://127.0.0.1:9/x"
        sub = self.assertCreated(self.create({"endPoint": ep, "resourceFilter": fresh_resource()}))
        self.assertEqual(sub["endPoint"], ep)

    def test_dedupe_same_id(self):
        res = fresh_resource()
        body = {"endPoint": self.ep(), "resourceFilter": res, "subjectFilter": "/party/9", "typeFilter": "a.b"}
        a = self.assertCreated(self.create(body))
        b = self.assertCreated(self.create(dict(body)))
        self.assertEqual(a["id"], b["id"])
        # any difference in a compared field makes a new subscription
        for change in ({"typeFilter": "a.c"}, {"subjectFilter": "/party/10"}, {"includeSubunits": True},
                       {"endPoint": self.ep()}, {"resourceFilter": fresh_resource()}):
            with self.subTest(change=change):
                c = self.assertCreated(self.create(dict(body, **change)))
                self.assertNotEqual(c["id"], a["id"])
        # another consumer with the same body gets its own subscription
        d = self.assertCreated(self.create(body, self.skd))
        self.assertNotEqual(d["id"], a["id"])
        self.assertEqual(d["consumer"], "/org/skd")

    def test_ids_increase_and_are_not_reused(self):
        ids = [self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}))["id"]
               for _ in range(3)]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertStatus(self.srv.delete_subscription(ids[-1], self.ttd), 200)
        nxt = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}))["id"]
        self.assertGreater(nxt, ids[-1])

    # --- consumers (check 6) ----------------------------------------------------------------------

    def test_consumer_kinds(self):
        res = fresh_resource()
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": res}, self.user))
        self.assertEqual(sub["consumer"], "/user/1337")
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": res}, self.orgno))
        self.assertEqual(sub["consumer"], "/organisation/991825827")
        # org wins over user id; user id wins over organisation number
        both = make_token(self.secret, scope=SCOPE_SUBSCRIBE, org="ttd", **{"urn:altinn:userid": "1337"})
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": res}, both))
        self.assertEqual(sub["consumer"], "/org/ttd")
        uo = make_token(self.secret, scope=SCOPE_SUBSCRIBE, org=None,
                        **{"urn:altinn:userid": "42", "urn:altinn:orgNumber": "991825827"})
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": res}, uo))
        self.assertEqual(sub["consumer"], "/user/42")

    def test_consumer_systemuser(self):
        su = str(uuid.uuid4())
        tok = token("--secret-file", self.secret_file, "--scope", SCOPE_SUBSCRIBE, "--systemuser", su)
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, tok))
        self.assertEqual(sub["consumer"], "/systemuser/" + su)

    # --- auth, content type, body ---------------------------------------------------------------

    def test_no_token_401(self):
        r = self.srv.create_subscription({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, None)
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_non_json_content_type_415(self):
        body = '{"endPoint":"%s","resourceFilter":"%s"}' % (self.ep(), fresh_resource())
        for ct in ("text/plain", "application/cloudevents+json", "application/x-www-form-urlencoded"):
            with self.subTest(content_type=ct):
                self.assertStatus(self.create(body, content_type=ct), 415)
        self.assertStatus(self.create(body, content_type=None), 415)

    def test_malformed_json_400(self):
        for body in ("{", "not json", "[]"):
            with self.subTest(body=body):
                self.assertStatus(self.create(body), 400)

    # --- 1. endpoint ----------------------------------------------------------------------------

    def test_endpoint_rules(self):
        res = fresh_resource()
        for ep in (None, "", "/relative/hook", "hook", "ftp://127.0.0.1/hook", "127.0.0.1:8080/hook",
                   "mailto:someone@example.com", "https://", "http://", "https:///path-only",
                   "http://127.0.0.1:0/hook", "http://127.0.0.1:65536/hook", "http://127.0.0.1:8x/hook"):
            with self.subTest(endPoint=ep):
                body = {"resourceFilter": res}
                if ep is not None:
                    body["endPoint"] = ep
                self.assertJsonString(self.create(body), 400, MSG_ENDPOINT)

    def test_null_fields_are_absent(self):
        self.assertJsonString(self.create({"endPoint": None, "resourceFilter": fresh_resource()}), 400, MSG_ENDPOINT)
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": None}), 400,
                              MSG_RESOURCE_REQUIRED)
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                              "sourceFilter": None, "subjectFilter": None, "typeFilter": None,
                                              "alternativeSubjectFilter": None, "includeSubunits": None}))
        for absent in ("subjectFilter", "typeFilter", "sourceFilter", "alternativeSubjectFilter"):
            self.assertNotIn(absent, sub)
        self.assertIs(sub["includeSubunits"], False)

    def test_endpoint_checked_first(self):
        # endpoint before sourceFilter, scope, urn, consumer and everything else
        body = {"endPoint": "/relative", "sourceFilter": "http://x.example/y", "resourceFilter": "not a urn",
                "alternativeSubjectFilter": "/person/1", "includeSubunits": True}
        self.assertJsonString(self.create(body), 400, MSG_ENDPOINT)
        self.assertJsonString(self.create(body, self.noscope), 400, MSG_ENDPOINT)
        self.assertJsonString(self.create(body, self.noconsumer_noscope), 400, MSG_ENDPOINT)

    # --- 2. sourceFilter scheme ---------------------------------------------------------------

    def test_source_filter_not_https(self):
        for sf in ("http://ttd.apps.altinn.no/ttd/myapp", "/ttd/myapp", "ftp://example.com/x", "example.com/x"):
            with self.subTest(sourceFilter=sf):
                self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                                   "sourceFilter": sf}), 400, MSG_SOURCE_HTTPS)
                # before the scope check (4) and the urn check (5)
                self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": "bad",
                                                   "sourceFilter": sf}, self.noscope), 400, MSG_SOURCE_HTTPS)

    # --- 4. scope -----------------------------------------------------------------------------

    def test_generic_without_scope_403(self):
        r = self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, self.noscope)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)
        # before the urn check (5), the consumer check (6) and the generic rules (8)
        for body in ({"endPoint": self.ep(), "resourceFilter": "not a urn"},
                     {"endPoint": self.ep()},
                     {"endPoint": self.ep(), "resourceFilter": fresh_resource(), "includeSubunits": True}):
            with self.subTest(body=body):
                r = self.create(body, self.noscope)
                self.assertStatus(r, 403)
                self.assertEmptyBody(r)
        r = self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, self.noconsumer_noscope)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)

    def test_scope_case_insensitive(self):
        tok = make_token(self.secret, scope="ALTINN:EVENTS.SUBSCRIBE", org="ttd")
        self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, tok))

    def test_app_subscription_needs_no_scope(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE}, self.noscope))
        self.assertEqual(sub["resourceFilter"], APP_RESOURCE)

    # --- 5. resourceFilter urn ---------------------------------------------------------------

    def test_bad_urn(self):
        for rf in ("not a urn", "urn:altinn", "urn::x", "urn:altinn:resource:", "resource:x", "urn:Altinn:x y"):
            with self.subTest(resourceFilter=rf):
                self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": rf}), 400, MSG_URN)
        # before the consumer check (6)
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": "not a urn"}, self.noconsumer),
                              400, MSG_URN)
        # before the app rules (7): the sourceFilter makes it an app subscription
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": "not a urn",
                                           "sourceFilter": "https://ttd.apps.altinn.no/ttd"}), 400, MSG_URN)

    def test_non_altinn_urn_accepted(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": "urn:example:thing:1"}))
        self.assertEqual(sub["resourceFilter"], "urn:example:thing:1")

    # --- 6. consumer --------------------------------------------------------------------------

    def test_missing_consumer(self):
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()},
                                          self.noconsumer), 400, MSG_CONSUMER)
        # before the generic rules (8)
        self.assertJsonString(self.create({"endPoint": self.ep()}, self.noconsumer), 400, MSG_CONSUMER)
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                           "includeSubunits": True}, self.noconsumer), 400, MSG_CONSUMER)
        # and for app subscriptions, before the app rules (7)
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE},
                                          self.noconsumer), 400, MSG_CONSUMER)
        # a partyid alone is no consumer
        tok = make_token(self.secret, scope=SCOPE_SUBSCRIBE, org=None, **{"urn:altinn:partyid": "5"})
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, tok),
                              400, MSG_CONSUMER)

    # --- 7. app subscriptions -----------------------------------------------------------------

    def test_app_subject_required_for_non_org(self):
        for tok in (self.user, self.orgno):
            with self.subTest():
                self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE}, tok),
                                      400, MSG_SUBJECT_REQUIRED)
                self.assertJsonString(self.create({"endPoint": self.ep(), "sourceFilter": APP_SOURCE}, tok),
                                      400, MSG_SUBJECT_REQUIRED)
        # the subject check comes before the source path check
        self.assertJsonString(self.create({"endPoint": self.ep(), "sourceFilter": "https://ttd.apps.altinn.no/ttd"},
                                          self.user), 400, MSG_SUBJECT_REQUIRED)
        # an org needs no subject
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE}))
        self.assertNotIn("subjectFilter", sub)

    def test_app_user_with_own_subject(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE,
                                              "subjectFilter": "/party/50001337"}, self.user))
        self.assertEqual(sub["consumer"], "/user/1337")
        self.assertEqual(sub["subjectFilter"], "/party/50001337")

    def test_app_source_path(self):
        for sf in ("https://ttd.apps.altinn.no/ttd", "https://ttd.apps.altinn.no/", "https://ttd.apps.altinn.no",
                   "https://ttd.apps.altinn.no/ttd/myapp/instances", "https://ttd.apps.altinn.no/ttd/myapp/x/y"):
            with self.subTest(sourceFilter=sf):
                self.assertJsonString(self.create({"endPoint": self.ep(), "sourceFilter": sf}), 400, MSG_APP_ID)
        # the source path check comes before the compatibility check
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": "urn:altinn:resource:app_x_y",
                                           "sourceFilter": "https://ttd.apps.altinn.no/ttd"}), 400, MSG_APP_ID)

    def test_app_resource_source_mismatch(self):
        for rf in ("urn:altinn:resource:app_ttd_other", "urn:altinn:resource:app_skd_myapp",
                   "urn:altinn:resource:some-generic-resource"):
            with self.subTest(resourceFilter=rf):
                self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": rf,
                                                   "sourceFilter": APP_SOURCE}), 400, MSG_INCOMPATIBLE)

    def test_app_resource_from_source(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "sourceFilter": APP_SOURCE}))
        self.assertEqual(sub["resourceFilter"], APP_RESOURCE)
        self.assertEqual(sub["sourceFilter"], APP_SOURCE)
        # matching resource and source: accepted as given
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE,
                                              "sourceFilter": APP_SOURCE, "typeFilter": "app.instance.created"}))
        self.assertEqual((sub["resourceFilter"], sub["sourceFilter"], sub["typeFilter"]),
                         (APP_RESOURCE, APP_SOURCE, "app.instance.created"))
        # another environment's apps host ending with the apps domain
        sf = "https://skd.apps.altinn.no/skd/other-app"
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "sourceFilter": sf}))
        self.assertEqual(sub["resourceFilter"], "urn:altinn:resource:app_skd_other-app")

    def test_app_include_subunits_needs_subject(self):
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE,
                                           "includeSubunits": True}), 400, MSG_SUBUNITS)
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": APP_RESOURCE,
                                              "subjectFilter": "/party/1", "includeSubunits": True}))
        self.assertIs(sub["includeSubunits"], True)

    # --- 8. generic rules ---------------------------------------------------------------------

    def test_generic_resource_required(self):
        self.assertJsonString(self.create({"endPoint": self.ep()}), 400, MSG_RESOURCE_REQUIRED)
        self.assertJsonString(self.create({"endPoint": self.ep(), "subjectFilter": "/party/1", "typeFilter": "t"}),
                              400, MSG_RESOURCE_REQUIRED)
        # before the sourceFilter, alternativeSubjectFilter and includeSubunits rules
        self.assertJsonString(self.create({"endPoint": self.ep(), "sourceFilter": "https://example.com/x",
                                           "alternativeSubjectFilter": "/person/1", "includeSubunits": True}),
                              400, MSG_RESOURCE_REQUIRED)

    def test_generic_source_filter_not_supported(self):
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                           "sourceFilter": "https://example.com/x"}), 400, MSG_SOURCE_NOT_SUPPORTED)
        # before the alternative subject rule
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                           "sourceFilter": "https://example.com/x",
                                           "alternativeSubjectFilter": "/person/1"}), 400, MSG_SOURCE_NOT_SUPPORTED)

    def test_generic_alternative_subject_not_supported(self):
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                           "alternativeSubjectFilter": "/person/01017012345"}), 400,
                              MSG_ALTSUBJECT_NOT_SUPPORTED)

    def test_generic_include_subunits_needs_subject(self):
        self.assertJsonString(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                           "includeSubunits": True}), 400, MSG_SUBUNITS)
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource(),
                                              "includeSubunits": False}))
        self.assertIs(sub["includeSubunits"], False)

    # --- ownership, list, delete -------------------------------------------------------------

    def test_get_unknown_404(self):
        for sid in ("999999999", "0"):
            with self.subTest(id=sid):
                r = self.srv.get_subscription(sid, self.ttd)
                self.assertStatus(r, 404)
                self.assertEmptyBody(r)
                r = self.srv.delete_subscription(sid, self.ttd)
                self.assertStatus(r, 404)
                self.assertEmptyBody(r)

    def test_get_delete_need_token(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}))
        for r in (self.srv.get_subscription(sub["id"], None), self.srv.delete_subscription(sub["id"], None),
                  self.srv.list_subscriptions(None)):
            self.assertStatus(r, 401)
            self.assertEmptyBody(r)
        self.assertStatus(self.srv.get_subscription(sub["id"], self.ttd), 200)

    def test_ownership(self):
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}))
        sid = sub["id"]
        r = self.srv.get_subscription(sid, self.skd)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)
        r = self.srv.delete_subscription(sid, self.skd)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)
        # still there for its owner
        r = self.srv.get_subscription(sid, self.ttd)
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["id"], sid)
        # a user is another consumer too
        self.assertStatus(self.srv.get_subscription(sid, self.user), 403)
        # and the other way round
        other = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}, self.skd))
        self.assertStatus(self.srv.get_subscription(other["id"], self.ttd), 403)
        self.assertStatus(self.srv.get_subscription(other["id"], self.skd), 200)

    def test_list_only_own(self):
        mine = [self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()}))["id"]
                for _ in range(3)]
        theirs = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": fresh_resource()},
                                                self.skd))["id"]
        r = self.srv.list_subscriptions(self.ttd)
        self.assertStatus(r, 200)
        self.assertEqual((r.headers.get("content-type") or "").split(";")[0].strip(), "application/json")
        doc = r.json()
        self.assertEqual(set(doc), {"count", "subscriptions"})
        self.assertEqual(doc["count"], len(doc["subscriptions"]))
        ids = [s["id"] for s in doc["subscriptions"]]
        self.assertEqual(len(ids), len(set(ids)))
        for sid in mine:
            self.assertIn(sid, ids)
        self.assertNotIn(theirs, ids)
        for s in doc["subscriptions"]:
            self.assertEqual(s["consumer"], "/org/ttd")
            self.assertTrue(REQUIRED_KEYS <= set(s))
        doc = self.srv.list_subscriptions(self.skd).json()
        self.assertIn(theirs, [s["id"] for s in doc["subscriptions"]])
        for sid in mine:
            self.assertNotIn(sid, [s["id"] for s in doc["subscriptions"]])

    def test_list_empty(self):
        tok = make_token(self.secret, scope=SCOPE_SUBSCRIBE, org="nobody%s" % uuid.uuid4().hex[:6])
        r = self.srv.list_subscriptions(tok)
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), {"count": 0, "subscriptions": []})

    def test_delete(self):
        res = fresh_resource()
        sub = self.assertCreated(self.create({"endPoint": self.ep(), "resourceFilter": res}))
        sid = sub["id"]
        r = self.srv.delete_subscription(sid, self.ttd)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        r = self.srv.get_subscription(sid, self.ttd)
        self.assertStatus(r, 404)
        self.assertEmptyBody(r)
        self.assertStatus(self.srv.delete_subscription(sid, self.ttd), 404)
        self.assertNotIn(sid, [s["id"] for s in self.srv.list_subscriptions(self.ttd).json()["subscriptions"]])
        # posting the same body again makes a new subscription with a new id
        again = self.assertCreated(self.create({"endPoint": sub["endPoint"], "resourceFilter": res}))
        self.assertGreater(again["id"], sid)


class ProductionCreateTest(SubsTestBase):
    """Production profile (no --dev): endpoints must be https; loopback literals may be refused."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-subs-prod-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.srv = cls.start_class_server("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--authz", "allow-all", "--validation-schedule", "100ms",
                                         "--webhook-timeout", "2s")
        cls.ttd = make_token(cls.secret, scope=SCOPE_SUBSCRIBE, org="ttd")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def test_http_endpoint_refused(self):
        for ep in ("http://hendelse-bb.invalid/hook", "http://example.com/hook", "http://127.0.0.1:8080/hook"):
            with self.subTest(endPoint=ep):
                self.assertJsonString(self.srv.create_subscription(
                    {"endPoint": ep, "resourceFilter": fresh_resource()}, self.ttd), 400, MSG_ENDPOINT)

    def test_https_endpoint_accepted(self):
        ep = "https://hendelse-bb-%s.invalid/hook" % uuid.uuid4().hex[:8]
        r = self.srv.create_subscription({"endPoint": ep, "resourceFilter": fresh_resource()}, self.ttd)
        sub = self.assertCreated(r)
        self.assertEqual(sub["endPoint"], ep)

    def test_other_rules_same_as_dev(self):
        ep = "https://hendelse-bb.invalid/hook"
        self.assertJsonString(self.srv.create_subscription({"endPoint": ep}, self.ttd), 400, MSG_RESOURCE_REQUIRED)
        self.assertJsonString(self.srv.create_subscription({"endPoint": ep, "resourceFilter": fresh_resource(),
                                                            "sourceFilter": "http://a.example/"}, self.ttd),
                              400, MSG_SOURCE_HTTPS)


if __name__ == "__main__":
    unittest.main()
