"""App events (Altinn Studio apps): POST /events/api/v1/app, GET /events/api/v1/app/{org}/{app} and
GET /events/api/v1/app/party. api.md §3 (and §2 for the next links, §6 for the register and the
authorizer)."""

import json
import os
import re
import sys
import tempfile
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, CE_JSON, JSON_UTF8, POLL_CONTENT_TYPE, PUBLISH_PATH,  # noqa: E402
                     SCOPE_PUBLISH, SCOPE_SUBSCRIBE, bearer, event, fresh_resource, jwt_encode,
                     make_token, media_type, new_secret_file)

APP_PATH = "/events/api/v1/app"
PARTY_PATH = "/events/api/v1/app/party"

MISSING = "Missing parameter values: source, subject and type cannot be null"
NO_FROM_AFTER = "The 'From' or 'After' parameter must be defined."
FROM_ZONE = "The 'From' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC"
TO_ZONE = "The 'To' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC"
SIZE_MSG = "The 'Size' parameter must be a number larger that 0."
PARTY_PERSON = "Only one of 'Party' or 'Person' can be defined."
PARTY_UNIT = "Only one of 'Party' or 'Unit' can be defined."
UNIT_DIGITS = "Value of 'Unit' needs to be exactly 9 digits."
PERSON_DIGITS = "Value of 'Person' needs to be exactly 11 digits."
NO_SUBJECT = "Subject must be specified using either query params party or unit or header value person."
ONLY_ORGS = "Only orgs can call this api"

REGISTER = {"parties": [{"partyId": 50001, "ssn": "01038712345"},
                        {"partyId": 50003, "orgNo": "910000003", "mainUnit": 50002}]}
PERSON_SSN, PERSON_PARTY = "01038712345", 50001
UNIT_ORGNO, UNIT_PARTY = "910000003", 50003

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def fresh_app():
    return "app%s" % uuid.uuid4().hex[:12]


def fresh_party():
    return 60000000 + uuid.uuid4().int % 30000000


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


class AppEventsBase(BBTestCase):
    """One server with JWT auth and the register table; helpers to publish and read app events."""

    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-app-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.register_file = os.path.join(cls.tmp.name, "register.json")
        with open(cls.register_file, "w") as f:
            json.dump(REGISTER, f)
        extra = cls.extra_args(cls.tmp.name) if callable(cls.extra_args) else cls.extra_args
        cls.srv = cls.start_class_server("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--register", cls.register_file, *extra)
        cls.org_tok = make_token(cls.secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE, org="ttd")
        cls.user_tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE, org=None,
                                  **{"urn:altinn:userid": "1337"})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    # tokens and requests ----------------------------------------------------------------------

    def pat(self, org="ttd", app="app", secret=None, ttl=3600, **extra):
        now = int(time.time())
        c = {"iat": now, "exp": now + ttl}
        if org is not None:
            c["iss"] = org
        if app is not None:
            c["urn:altinn:app"] = app
        c.update(extra)
        return jwt_encode(c, secret or self.secret)

    def post(self, body, org="ttd", app="app", tok=None, pat=None, content_type="application/json",
             path=APP_PATH, raw=None):
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(bearer(tok or self.org_tok))
        if pat is None:
            pat = self.pat(org, app)
        if pat is not False:
            h["PlatformAccessToken"] = pat
        data = raw if raw is not None else json.dumps(body)
        return self.srv.request("POST", path, data, h)

    def app_body(self, org="ttd", app="app", party=None, guid=None, **overrides):
        party = party or fresh_party()
        guid = guid or str(uuid.uuid4())
        b = {"specversion": "1.0", "type": "app.instance.created",
             "source": "https://%s.apps.altinn.no/%s/%s/instances/%d/%s" % (org, org, app, party, guid),
             "subject": "/party/%d" % party}
        for k, v in overrides.items():
            if v is None:
                b.pop(k, None)
            else:
                b[k] = v
        return b

    def create(self, app, **overrides):
        """Posts one app event for ttd/app; returns (id, body sent)."""
        b = self.app_body(app=app, **overrides)
        r = self.post(b, app=app)
        self.assertStatus(r, 201)
        return r.json(), b

    def get(self, path, query="", headers=None, tok=None):
        h = bearer(tok or self.org_tok)
        h.update(headers or {})
        return self.srv.request("GET", path + ("?" + query if query else ""), None, h)

    def org_path(self, app, org="ttd"):
        return "%s/%s/%s" % (APP_PATH, org, app)

    def page(self, resp):
        return self.assertPollPage(resp)

    def follow(self, resp, tok=None, max_pages=100):
        """Follows next links from resp; returns (events, responses)."""
        out, pages = [], [resp]
        for _ in range(max_pages):
            out.extend(self.page(resp))
            nxt = resp.headers.get("next")
            if nxt is None:
                return out, pages
            resp = self.srv.request("GET", self.srv.path_of(nxt), None, bearer(tok or self.org_tok))
            pages.append(resp)
        self.fail("too many pages")

    def assertJsonString(self, resp, status, text):
        self.assertStatus(resp, status)
        self.assertEqual(media_type(resp.headers.get("content-type")), "application/json", repr(resp))
        self.assertEqual(resp.json(), text)


class AppPostTest(AppEventsBase):
    # --- authentication and the access token ------------------------------------------------

    def test_no_bearer_401(self):
        r = self.srv.request("POST", APP_PATH, json.dumps(self.app_body()),
                             {"Content-Type": "application/json", "PlatformAccessToken": self.pat()})
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_bad_bearer_401(self):
        r = self.post(self.app_body(), tok=make_token(self.secret + "x"))
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_no_platform_access_token_403(self):
        r = self.post(self.app_body(), pat=False)
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)

    def test_bad_platform_access_tokens_403(self):
        for pat in (self.pat(secret=self.secret + "x"), self.pat(app=None), self.pat(org=None),
                    self.pat(ttl=-100), "not-a-jwt", self.pat(app="")):
            r = self.post(self.app_body(), pat=pat)
            self.assertStatus(r, 403)
            self.assertEmptyBody(r)

    def test_auth_before_content_type(self):
        r = self.post(self.app_body(), pat=False, content_type="text/plain")
        self.assertStatus(r, 403)

    # --- content type and body ------------------------------------------------------------------

    def test_content_type_415(self):
        for ct in (CE_JSON, "text/plain", None, "application/jsonx"):
            r = self.post(self.app_body(), content_type=ct)
            self.assertProblemJson(r, 415)

    def test_content_type_with_charset_ok(self):
        r = self.post(self.app_body(), content_type="Application/JSON; charset=utf-8")
        self.assertStatus(r, 201)

    def test_missing_values_400(self):
        for name in ("source", "type", "subject", "specversion"):
            for value in (None, "", "null"):
                b = self.app_body()
                if value is None:
                    b.pop(name)
                elif value == "null":
                    b[name] = None
                else:
                    b[name] = value
                with self.subTest(name=name, value=value):
                    self.assertDetailProblem(self.post(b), MISSING)

    def test_missing_before_source_check(self):
        b = self.app_body(app="other", subject=None)
        self.assertDetailProblem(self.post(b), MISSING)

    def test_invalid_json_400(self):
        self.assertValidationProblem(self.post(None, raw="{not json"))
        self.assertValidationProblem(self.post(None, raw="[1,2]"))
        self.assertValidationProblem(self.post(self.app_body(type=5)))

    def test_too_big_413(self):
        b = self.app_body(data={"x": "y" * 300000})
        self.assertProblemJson(self.post(b), 413)

    # --- the source must belong to the app of the token ----------------------------------------

    def test_source_of_other_app_401(self):
        b = self.app_body(org="ttd", app="other")
        r = self.post(b, org="ttd", app="app")
        self.assertJsonString(r, 401, "ttd/app is not authorized to create events for %s" % b["source"])
        self.assertEqual(r.headers.get("content-type"), JSON_UTF8)

    def test_source_of_other_org_401(self):
        b = self.app_body(org="skd", app="app")
        r = self.post(b, org="ttd", app="app")
        self.assertJsonString(r, 401, "ttd/app is not authorized to create events for %s" % b["source"])

    # --- success ---------------------------------------------------------------------------

    def test_created_event(self):
        app = fresh_app()
        party, guid = fresh_party(), str(uuid.uuid4())
        b = self.app_body(app=app, party=party, guid=guid, alternativesubject="/person/01038712345",
                          data={"a": 1}, dataschema="https://schema.example/x", contenttype="text/plain",
                          id="client-id", time="2000-01-01T00:00:00Z", resource="urn:altinn:resource:x")
        before = datetime.now(timezone.utc)
        r = self.post(b, app=app)
        after = datetime.now(timezone.utc)
        self.assertStatus(r, 201)
        self.assertEqual(r.headers.get("content-type"), JSON_UTF8)
        self.assertEqual(r.headers.get("location"), b["subject"])
        ev_id = r.json()
        self.assertIsInstance(ev_id, str)
        self.assertRegex(ev_id, UUID4_RE)

        # through §2
        resource = "urn:altinn:resource:app_ttd_%s" % app
        page = self.assertPollPage(self.srv.poll("resource=%s&after=0" % resource, self.org_tok))
        self.assertEqual(len(page), 1)
        ev = page[0]
        self.assertEqual(set(ev), {"specversion", "id", "source", "type", "subject", "time", "resource",
                                   "resourceinstance", "alternativesubject"})
        self.assertEqual(ev["specversion"], "1.0")
        self.assertEqual(ev["id"], ev_id)
        self.assertEqual(ev["source"], b["source"])
        self.assertEqual(ev["type"], "app.instance.created")
        self.assertEqual(ev["subject"], "/party/%d" % party)
        self.assertEqual(ev["resource"], resource)
        self.assertEqual(ev["resourceinstance"], "%d/%s" % (party, guid))
        self.assertEqual(ev["alternativesubject"], "/person/01038712345")
        self.assertRegex(ev["time"], TIME_RE)
        t = parse_time(ev["time"])
        self.assertGreaterEqual(t, before - timedelta(seconds=1))
        self.assertLessEqual(t, after + timedelta(seconds=1))

        # through the app API
        page = self.page(self.get(self.org_path(app), "after=0"))
        self.assertEqual(page, [ev])

    def test_ids_are_new(self):
        app = fresh_app()
        b = self.app_body(app=app)
        ids = set()
        for _ in range(3):
            r = self.post(b, app=app)
            self.assertStatus(r, 201)
            ids.add(r.json())
        self.assertEqual(len(ids), 3)
        self.assertEqual(len(self.page(self.get(self.org_path(app), "after=0"))), 3)

    def test_no_resourceinstance_for_other_sources(self):
        app = fresh_app()
        for source in ("https://ttd.apps.altinn.no/ttd/%s" % app,
                       "https://ttd.apps.altinn.no/ttd/%s/instances/5" % app,
                       "https://ttd.apps.altinn.no/ttd/%s/other/5/x" % app,
                       "https://ttd.apps.altinn.no/ttd/%s/instances/5/x/data" % app,
                       "/ttd/%s/instances/5/x" % app):
            with self.subTest(source=source):
                self.create(app, source=source)
        for ev in self.page(self.get(self.org_path(app), "after=0")):
            self.assertNotIn("resourceinstance", ev)
            self.assertEqual(ev["resource"], "urn:altinn:resource:app_ttd_%s" % app)

    def test_source_prefix_is_plain(self):
        # Altinn compares with StartsWith: "/ttd/app" is a prefix of "/ttd/appendix/..."
        app = fresh_app()
        b = self.app_body(app=app)
        b["source"] = "https://h/ttd/%sx/instances/1/2" % app
        r = self.post(b, app=app)
        self.assertStatus(r, 201)

    def test_path_case_and_trailing_slash(self):
        app = fresh_app()
        r = self.post(self.app_body(app=app), app=app, path="/Events/API/v1/App/")
        self.assertStatus(r, 201)

    def test_methods_405(self):
        r = self.srv.request("GET", APP_PATH, None, bearer(self.org_tok))
        self.assertStatus(r, 405)
        self.assertEqual(r.headers.get("allow"), "POST")
        for path in (self.org_path("x"), PARTY_PATH):
            for m in ("POST", "DELETE", "PUT"):
                r = self.srv.request(m, path, None, bearer(self.org_tok))
                self.assertStatus(r, 405)
                self.assertEqual(r.headers.get("allow"), "GET")

    def test_unknown_paths_404(self):
        for path in (APP_PATH + "/ttd", APP_PATH + "/ttd/app/extra", APP_PATH + "x",
                     APP_PATH + "//x"):
            r = self.srv.request("GET", path + "?after=0", None, bearer(self.org_tok))
            self.assertStatus(r, 404)


class AppOrgGetTest(AppEventsBase):
    def test_no_bearer_401(self):
        r = self.srv.request("GET", self.org_path("x") + "?after=0")
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_only_orgs_401(self):
        r = self.get(self.org_path("x"), "after=0", tok=self.user_tok)
        self.assertJsonString(r, 401, ONLY_ORGS)
        # before the parameter checks
        r = self.get(self.org_path("x"), "size=0", tok=self.user_tok)
        self.assertJsonString(r, 401, ONLY_ORGS)

    def test_messages(self):
        cases = [
            ("", None, NO_FROM_AFTER),
            ("size=0", None, NO_FROM_AFTER),
            ("from=2022-07-07T11:00:53", None, FROM_ZONE),
            ("from=2022-07-07T11:00:53&to=2022-07-07T11:00:53", None, FROM_ZONE),
            ("after=0&to=2022-07-07T11:00:53", None, TO_ZONE),
            ("after=0&size=0", None, SIZE_MSG),
            ("after=0&size=-3", None, SIZE_MSG),
            ("after=0&size=0&party=5", {"person": PERSON_SSN}, SIZE_MSG),
            ("after=0&party=5", {"person": PERSON_SSN}, PARTY_PERSON),
            ("after=0&party=5&unit=910000003", {"person": PERSON_SSN}, PARTY_PERSON),
            ("after=0&party=5&unit=910000003", None, PARTY_UNIT),
            ("after=0&party=5&unit=91", None, PARTY_UNIT),
            ("after=0&unit=91000000", None, UNIT_DIGITS),
            ("after=0&unit=9100000031", None, UNIT_DIGITS),
            ("after=0&unit=91000000x", None, UNIT_DIGITS),
            ("after=0", {"person": "123"}, PERSON_DIGITS),
        ]
        for query, headers, msg in cases:
            with self.subTest(query=query, headers=headers):
                self.assertDetailProblem(self.get(self.org_path("x"), query, headers), msg)

    def test_binding_errors(self):
        self.assertValidationProblem(self.get(self.org_path("x"), "after=0&size=abc"),
                                     "The value 'abc' is not valid for size.", key="size")
        self.assertValidationProblem(self.get(self.org_path("x"), "after=0&party=x1"),
                                     "The value 'x1' is not valid for party.", key="party")
        self.assertValidationProblem(self.get(self.org_path("x"), "from=yesterday"),
                                     "The value 'yesterday' is not valid for from.", key="from")

    def test_results_and_next_links(self):
        app = fresh_app()
        ids = [self.create(app)[0] for _ in range(5)]
        path = self.org_path(app)
        r = self.get(path, "after=0")
        self.assertEqual(r.headers.get("content-type"), POLL_CONTENT_TYPE)
        self.assertEqual([e["id"] for e in self.page(r)], ids)
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s" % (self.srv.base_url, path, ids[-1]))

        r = self.get(path, "type=app.instance.created&after=0&size=2")
        self.assertEqual([e["id"] for e in self.page(r)], ids[:2])
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&type=app.instance.created&size=2"
                         % (self.srv.base_url, path, ids[1]))
        events, pages = self.follow(r)
        self.assertEqual([e["id"] for e in events], ids)
        self.assertEqual(self.page(pages[-1]), [])
        self.assertNotIn("next", pages[-1].headers)

        # after an id in the middle; an unknown id means from the beginning
        self.assertEqual([e["id"] for e in self.page(self.get(path, "after=%s" % ids[2]))], ids[3:])
        self.assertEqual([e["id"] for e in self.page(self.get(path, "after=nope"))], ids)

        # an empty page at the end has no next
        r = self.get(path, "after=%s" % ids[-1])
        self.assertEqual(self.page(r), [])
        self.assertNotIn("next", r.headers)

    def test_next_keeps_request_path(self):
        app = fresh_app()
        ev_id, _ = self.create(app)
        path = "/EVENTS/api/v1/app/ttd/%s/" % app
        r = self.get(path, "size=5&after=0")
        self.assertEqual(len(self.page(r)), 1)
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&size=5" % (self.srv.base_url, path, ev_id))

    def test_size_capped(self):
        app = fresh_app()
        r = self.get(self.org_path(app), "after=0&size=100000")
        self.assertEqual(self.page(r), [])

    def test_other_apps_not_included(self):
        a, b = fresh_app(), fresh_app()
        ida, _ = self.create(a)
        self.create(b)
        self.assertEqual([e["id"] for e in self.page(self.get(self.org_path(a), "after=0"))], [ida])

    def test_any_org_may_read(self):
        app = fresh_app()
        ev_id, _ = self.create(app)
        tok = make_token(self.secret, scope="", org="skd")
        self.assertEqual([e["id"] for e in self.page(self.get(self.org_path(app), "after=0", tok=tok))],
                         [ev_id])

    def test_party_filter(self):
        app = fresh_app()
        p1, p2 = fresh_party(), fresh_party()
        i1, _ = self.create(app, party=p1)
        self.create(app, party=p2)
        i3, _ = self.create(app, party=p1)
        got = self.page(self.get(self.org_path(app), "after=0&party=%d" % p1))
        self.assertEqual([e["id"] for e in got], [i1, i3])
        self.assertEqual(self.page(self.get(self.org_path(app), "after=0&party=0")).__len__(), 3)

    def test_type_wildcards_case_insensitive(self):
        app = fresh_app()
        i1, _ = self.create(app, type="app.instance.created")
        i2, _ = self.create(app, type="app.instance.process.completed")
        i3, _ = self.create(app, type="App.Other")
        path = self.org_path(app)

        def ids(query):
            return [e["id"] for e in self.page(self.get(path, query))]

        self.assertEqual(ids("after=0&type=APP.INSTANCE.CREATED"), [i1])
        self.assertEqual(ids("after=0&type=app.instance.%25"), [i1, i2])
        self.assertEqual(ids("after=0&type=APP.%25"), [i1, i2, i3])
        self.assertEqual(ids("after=0&type=app.other&type=%25completed"), [i2, i3])
        self.assertEqual(ids("after=0&type=app_other"), [i3])
        self.assertEqual(ids("after=0&type=app.instance"), [])

    def test_from_to(self):
        app = fresh_app()
        for _ in range(3):
            self.create(app)
        evs = self.page(self.get(self.org_path(app), "after=0"))
        times = [e["time"] for e in evs]
        ids = [e["id"] for e in evs]
        path = self.org_path(app)

        def got(query):
            return [e["id"] for e in self.page(self.get(path, query))]

        self.assertEqual(got("from=%s" % times[1]), ids[1:])
        self.assertEqual(got("after=0&to=%s" % times[1]), ids[:2])
        self.assertEqual(got("from=%s&to=%s" % (times[1], times[1])), [ids[1]])
        self.assertEqual(got("from=%s&after=%s" % (times[0], ids[1])), ids[2:])
        # the same instant in another zone
        t1 = parse_time(times[1]).astimezone(timezone(timedelta(hours=2)))
        other = t1.strftime("%Y-%m-%dT%H:%M:%S.%f") + "%2B02:00"
        self.assertEqual(got("from=%s" % other), ids[1:])
        self.assertEqual(got("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"), [])
        # from alone pages with next links that carry it
        r = self.get(path, "from=%s&size=1" % times[0])
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&from=%s&size=1"
                         % (self.srv.base_url, path, ids[0], times[0]))
        events, _ = self.follow(r)
        self.assertEqual([e["id"] for e in events], ids)

    def test_from_ignores_non_app_time_fields(self):
        # an event published through §1 on the app resource, with "time" only inside data
        app = fresh_app()
        res = "urn:altinn:resource:app_ttd_%s" % app
        r = self.srv.publish(event(resource=res, data={"time": "2999-01-01T00:00:00Z"}), self.org_tok)
        self.assertStatus(r, 200)
        r = self.srv.publish(event(resource=res, time="2999-01-01T00:00:00Z"), self.org_tok)
        self.assertStatus(r, 200)
        got = self.page(self.get(self.org_path(app), "from=2998-01-01T00:00:00Z"))
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["time"], "2999-01-01T00:00:00Z")

    def test_person_and_unit(self):
        app = fresh_app()
        ip, _ = self.create(app, party=PERSON_PARTY)
        iu, _ = self.create(app, party=UNIT_PARTY)
        self.create(app)
        path = self.org_path(app)
        self.assertEqual([e["id"] for e in self.page(self.get(path, "after=0", {"person": PERSON_SSN}))],
                         [ip])
        self.assertEqual([e["id"] for e in self.page(self.get(path, "after=0&unit=%s" % UNIT_ORGNO))],
                         [iu])
        # the person wins over the unit, as in Altinn
        self.assertEqual([e["id"] for e in self.page(self.get(path, "after=0&unit=%s" % UNIT_ORGNO,
                                                              {"person": PERSON_SSN}))], [ip])

    def test_unknown_person_and_unit_404(self):
        r = self.get(self.org_path("x"), "after=0", {"person": "31129912345"})
        self.assertStatus(r, 404)
        self.assertEmptyBody(r)
        r = self.get(self.org_path("x"), "after=0&unit=999999999")
        self.assertStatus(r, 404)
        self.assertEmptyBody(r)


class AppPartyGetTest(AppEventsBase):
    def test_no_bearer_401(self):
        r = self.srv.request("GET", PARTY_PATH + "?after=0&party=1")
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_subject_required(self):
        self.assertDetailProblem(self.get(PARTY_PATH, "after=0"), NO_SUBJECT)
        self.assertDetailProblem(self.get(PARTY_PATH, "after=0&party=0"), NO_SUBJECT)
        self.assertDetailProblem(self.get(PARTY_PATH, "after=0&party=-4"), NO_SUBJECT)
        # the other checks come first (Altinn's order)
        self.assertDetailProblem(self.get(PARTY_PATH, ""), NO_FROM_AFTER)
        self.assertDetailProblem(self.get(PARTY_PATH, "after=0&size=0"), SIZE_MSG)
        self.assertDetailProblem(self.get(PARTY_PATH, "after=0&unit=1"), UNIT_DIGITS)

    def test_messages(self):
        self.assertDetailProblem(self.get(PARTY_PATH, "party=1"), NO_FROM_AFTER)
        self.assertDetailProblem(self.get(PARTY_PATH, "party=1&from=2022-07-07T11:00:53"), FROM_ZONE)
        self.assertDetailProblem(self.get(PARTY_PATH, "party=1&after=0&to=2022-07-07T11:00:53"), TO_ZONE)
        self.assertDetailProblem(self.get(PARTY_PATH, "party=1&after=0", {"person": PERSON_SSN}),
                                 PARTY_PERSON)
        self.assertDetailProblem(self.get(PARTY_PATH, "party=1&after=0&unit=910000003"), PARTY_UNIT)

    def test_any_caller(self):
        party = fresh_party()
        ev_id, _ = self.create(fresh_app(), party=party)
        for tok in (self.user_tok, self.org_tok, make_token(self.secret, scope="", org=None,
                                                            **{"urn:altinn:orgNumber": "912345678"})):
            got = self.page(self.get(PARTY_PATH, "after=0&party=%d" % party, tok=tok))
            self.assertEqual([e["id"] for e in got], [ev_id])

    def test_app_events_of_the_party_only(self):
        party = fresh_party()
        a1, a2 = fresh_app(), fresh_app()
        i1, _ = self.create(a1, party=party)
        self.create(a1)
        # a §1 event with the same subject on a resource that is not an app's is not an app event
        r = self.srv.publish(event(resource=fresh_resource(), subject="/party/%d" % party), self.org_tok)
        self.assertStatus(r, 200)
        r = self.srv.publish(event(resource="urn:altinn:resource:app_ttd_%s" % a2,
                                   subject="/party/%d" % party), self.org_tok)
        self.assertStatus(r, 200)
        i2, _ = self.create(a2, party=party)
        got = self.page(self.get(PARTY_PATH, "after=0&party=%d" % party))
        self.assertEqual(len(got), 3)
        self.assertEqual(got[0]["id"], i1)
        self.assertEqual(got[2]["id"], i2)
        self.assertEqual(got[1]["resource"], "urn:altinn:resource:app_ttd_%s" % a2)

    def test_source_wildcards_case_insensitive(self):
        party = fresh_party()
        a1, a2 = fresh_app(), fresh_app()
        i1, _ = self.create(a1, party=party)
        i2, _ = self.create(a2, party=party)

        def ids(query):
            return [e["id"] for e in self.page(self.get(PARTY_PATH, "after=0&party=%d&%s" % (party, query)))]

        self.assertEqual(ids("source=HTTPS://TTD.APPS.ALTINN.NO/TTD/%s/%%25" % a1.upper()), [i1])
        self.assertEqual(ids("source=%%25/ttd/%s/%%25&source=%%25/ttd/%s/%%25" % (a1, a2)), [i1, i2])
        self.assertEqual(ids("source=https://ttd.apps.altinn.no/ttd/app%25"), [i1, i2])
        self.assertEqual(ids("source=https://ttd.apps.altinn.no/ttd/%s" % a1), [])
        self.assertEqual(ids("type=APP.INSTANCE.%25&source=%25"), [i1, i2])
        self.assertEqual(ids("type=other"), [])

    def test_next_links(self):
        party = fresh_party()
        ids = [self.create(fresh_app(), party=party)[0] for _ in range(3)]
        r = self.get(PARTY_PATH, "party=%d&size=2&after=0" % party)
        self.assertEqual([e["id"] for e in self.page(r)], ids[:2])
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&party=%d&size=2"
                         % (self.srv.base_url, PARTY_PATH, ids[1], party))
        events, pages = self.follow(r)
        self.assertEqual([e["id"] for e in events], ids)
        self.assertNotIn("next", pages[-1].headers)

    def test_person_and_unit(self):
        t = "test.person.%s" % uuid.uuid4().hex[:8]
        ip, _ = self.create(fresh_app(), party=PERSON_PARTY, type=t)
        iu, _ = self.create(fresh_app(), party=UNIT_PARTY, type=t)
        got = self.page(self.get(PARTY_PATH, "after=0&type=%s" % t, {"person": PERSON_SSN}))
        self.assertEqual([e["id"] for e in got], [ip])
        got = self.page(self.get(PARTY_PATH, "after=0&type=%s&unit=%s" % (t, UNIT_ORGNO)))
        self.assertEqual([e["id"] for e in got], [iu])
        r = self.get(PARTY_PATH, "after=0", {"person": "31129912345"})
        self.assertStatus(r, 404)
        self.assertEmptyBody(r)
        r = self.get(PARTY_PATH, "after=0&unit=999999998")
        self.assertStatus(r, 404)
        self.assertEmptyBody(r)


class AppAuthzTest(AppEventsBase):
    """With a policy, GET results are only the events the caller may read."""

    @staticmethod
    def extra_args(tmpdir):
        policy = {"rules": [
            {"effect": "deny", "actions": ["read"], "resource": "*", "consumer": "/org/ttd",
             "subject": "/party/7*"},
            {"effect": "permit", "actions": ["read"], "resource": "urn:altinn:resource:app_*",
             "consumer": "*"},
        ]}
        path = os.path.join(tmpdir, "policy.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        return ("--authz", path)

    def test_unauthorized_events_skipped(self):
        app = fresh_app()
        i1, _ = self.create(app, party=61000001)
        self.create(app, party=71000001)
        i3, _ = self.create(app, party=61000002)
        got = self.page(self.get(self.org_path(app), "after=0"))
        self.assertEqual([e["id"] for e in got], [i1, i3])
        # another org may read them all
        tok = make_token(self.secret, scope="", org="skd")
        self.assertEqual(len(self.page(self.get(self.org_path(app), "after=0", tok=tok))), 3)
        # the party endpoint: the skipped events still move the cursor
        r = self.get(PARTY_PATH, "after=0&party=71000001")
        self.assertEqual(self.page(r), [])
        self.assertNotIn("next", r.headers)


class AppBoundedScanTest(AppEventsBase):
    """The party endpoint scans all events, at most 10 000 per request: past that it answers with a
    next link that points past what it examined, even on an empty page."""

    def test_scan_is_bounded(self):
        res = fresh_resource()
        total = 10500
        batch = 1000
        for start in range(0, total, batch):
            evs = [event(resource=res, subject="/party/1") for _ in range(min(batch, total - start))]
            r = self.srv.request("POST", PUBLISH_PATH, json.dumps(evs),
                                 dict(bearer(self.org_tok),
                                      **{"Content-Type": "application/cloudevents-batch+json"}))
            self.assertStatus(r, 200)
        party = fresh_party()
        ev_id, _ = self.create(fresh_app(), party=party)
        r = self.get(PARTY_PATH, "after=0&party=%d" % party)
        self.assertEqual(self.page(r), [])
        self.assertIn("next", r.headers)
        self.assertIn("&party=%d" % party, r.headers["next"])
        events, pages = self.follow(r)
        self.assertEqual([e["id"] for e in events], [ev_id])
        self.assertNotIn("next", pages[-1].headers)


class AppAuthNoneTest(BBTestCase):
    """--auth none: the dev identity is the caller; a PlatformAccessToken may be left out, and the
    org and the app are then the first two segments of the source path."""

    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--auth", "none")

    def post(self, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.srv.request("POST", APP_PATH, json.dumps(body), h)

    def test_without_token(self):
        app = fresh_app()
        b = {"specversion": "1.0", "type": "t", "subject": "/party/5",
             "source": "https://h/digdir/%s/instances/5/g" % app}
        r = self.post(b)
        self.assertStatus(r, 201)
        got = self.assertPollPage(self.srv.request("GET", "%s/digdir/%s?after=0" % (APP_PATH, app)))
        self.assertEqual([e["id"] for e in got], [r.json()])
        self.assertEqual(got[0]["resource"], "urn:altinn:resource:app_digdir_%s" % app)
        self.assertEqual(got[0]["resourceinstance"], "5/g")

    def test_source_without_app_403(self):
        for source in ("https://h/digdir", "https://h/", "urn:x", "x"):
            b = {"specversion": "1.0", "type": "t", "subject": "/party/5", "source": source}
            self.assertStatus(self.post(b), 403)

    def test_token_still_checked_when_given(self):
        b = {"specversion": "1.0", "type": "t", "subject": "/party/5", "source": "https://h/ttd/x/y"}
        r = self.post(b, {"PlatformAccessToken": "garbage"})
        self.assertStatus(r, 403)
        pat = jwt_encode({"iss": "ttd", "urn:altinn:app": "other"}, "any")
        r = self.post(b, {"PlatformAccessToken": pat})
        self.assertStatus(r, 401)
        self.assertEqual(r.json(), "ttd/other is not authorized to create events for https://h/ttd/x/y")


if __name__ == "__main__":
    unittest.main()
