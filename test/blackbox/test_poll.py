"""Poll (GET /events/api/v1/events): auth, parameter validation, filters, `next` links. api.md §2."""

import os
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, POLL_PATH, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event,  # noqa: E402
                     fresh_resource, make_token, new_secret_file)

BAD_RESOURCE = "The 'resource' parameter must begin with `urn:altinn:resource:`"
NO_AFTER = "The 'after' parameter must be defined."
BOTH_SUBJECTS = "Only one of 'subject' or 'alternativeSubject' can be defined."
ALT = "Altinn-AlternativeSubject"


class PollTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-secret-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.srv = cls.start_class_server("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--authz", "allow-all")
        cls.pub_tok = make_token(cls.secret, scope=SCOPE_PUBLISH)
        cls.sub_tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def publish(self, *events):
        """Publishes sequentially (so store order is call order); returns the events."""
        for ev in events:
            r = self.srv.publish(ev, self.pub_tok)
            self.assertStatus(r, 200)
        return list(events)

    def seed(self, n, **overrides):
        res = fresh_resource()
        return res, self.publish(*[event(resource=res, **overrides) for _ in range(n)])

    def poll(self, query, headers=None, tok=None):
        return self.srv.poll(query, tok or self.sub_tok, headers)

    def page(self, query, headers=None):
        return self.assertPollPage(self.poll(query, headers))

    def all_events(self, query, headers=None):
        events, pages = self.srv.poll_all(query, self.sub_tok, headers)
        for p in pages:
            self.assertPollPage(p)
        return events

    # --- auth --------------------------------------------------------------------------------

    def test_no_token_401(self):
        r = self.srv.poll("resource=urn:altinn:resource:x&after=0", None)
        self.assertStatus(r, 401)

    def test_bad_token_401(self):
        r = self.srv.poll("resource=urn:altinn:resource:x&after=0", make_token(self.secret + "x",
                                                                                scope=SCOPE_SUBSCRIBE))
        self.assertStatus(r, 401)
        r = self.srv.poll("resource=urn:altinn:resource:x&after=0",
                          make_token(self.secret, scope=SCOPE_SUBSCRIBE, ttl=-100))
        self.assertStatus(r, 401)

    def test_no_subscribe_scope_403(self):
        r = self.srv.poll("resource=urn:altinn:resource:x&after=0", self.pub_tok)
        self.assertStatus(r, 403)

    def test_subscribe_scope_case_insensitive(self):
        r = self.srv.poll("resource=urn:altinn:resource:x&after=0",
                          make_token(self.secret, scope="ALTINN:EVENTS.SUBSCRIBE"))
        self.assertEqual(self.assertPollPage(r), [])

    # --- parameter validation ----------------------------------------------------------------

    def test_missing_resource(self):
        for q in ("after=0", "", "resource=&after=0"):
            with self.subTest(query=q):
                self.assertValidationProblem(self.poll(q), "The resource field is required.", key="resource")

    def test_resource_prefix(self):
        for res in ("urn:altinn:x", "urn:altinn:resourcex", "urn%3Aaltinn%3Aapp", "notaurn",
                    "URN:ALTINN:RESOURCE:x"):
            with self.subTest(resource=res):
                self.assertDetailProblem(self.poll("resource=%s&after=0" % res), BAD_RESOURCE)

    def test_missing_after(self):
        self.assertDetailProblem(self.poll("resource=urn:altinn:resource:x"), NO_AFTER)
        self.assertDetailProblem(self.poll("resource=urn:altinn:resource:x&after="), NO_AFTER)

    def test_subject_and_alternative_subject(self):
        r = self.poll("resource=urn:altinn:resource:x&after=0&subject=/party/1", {ALT: "/person/1"})
        self.assertDetailProblem(r, BOTH_SUBJECTS)

    def test_size_not_integer(self):
        for size in ("abc", "1.5", "10x", "0x10", "1e3"):
            with self.subTest(size=size):
                r = self.poll("resource=urn:altinn:resource:x&after=0&size=%s" % size)
                self.assertProblemJson(r, 400)

    # --- results -----------------------------------------------------------------------------

    def test_empty(self):
        r = self.poll("resource=%s&after=0" % fresh_resource())
        self.assertEqual(r.body.strip(), b"[]")
        self.assertEqual(self.assertPollPage(r), [])
        self.assertNotIn("next", r.headers)

    def test_store_order_and_exact_events(self):
        res, evs = self.seed(6)
        self.assertEqual(self.page("resource=%s&after=0" % res), evs)

    def test_after_zero_and_unknown(self):
        res, evs = self.seed(4)
        self.assertEqual(self.page("resource=%s&after=0" % res), evs)
        self.assertEqual(self.page("resource=%s&after=%s" % (res, uuid.uuid4())), evs)
        self.assertEqual(self.page("resource=%s&after=not-an-id-at-all" % res), evs)

    def test_after_id(self):
        res, evs = self.seed(5)
        self.assertEqual(self.page("resource=%s&after=%s" % (res, evs[1]["id"])), evs[2:])
        self.assertEqual(self.page("resource=%s&after=%s" % (res, evs[0]["id"])), evs[1:])
        r = self.poll("resource=%s&after=%s" % (res, evs[-1]["id"]))
        self.assertEqual(self.assertPollPage(r), [])
        self.assertNotIn("next", r.headers)

    def test_after_duplicate_id_oldest_counts(self):
        res = fresh_resource()
        shared = str(uuid.uuid4())
        e1 = event(resource=res, id=shared, source="https://example.com/a")
        e2 = event(resource=res)
        e3 = event(resource=res, id=shared, source="https://example.com/b")
        e4 = event(resource=res)
        self.publish(e1, e2, e3, e4)
        self.assertEqual(self.page("resource=%s&after=%s" % (res, shared)), [e2, e3, e4])

    def test_after_id_of_other_resource(self):
        # after is an event id; an id stored under another resource still positions the cursor,
        # or counts as unknown. Either way nothing of this resource before it may be repeated after it.
        res_a, a = self.seed(2)
        res_b, b = self.seed(2)
        res_a_later = self.publish(event(resource=res_a))
        got = self.page("resource=%s&after=%s" % (res_a, b[0]["id"]))
        self.assertIn(got, (a + res_a_later, res_a_later))

    def test_resource_isolation(self):
        res_a, a = self.seed(3)
        res_b, b = self.seed(2)
        self.publish(event(resource=res_a + "x"))
        self.assertEqual(self.page("resource=%s&after=0" % res_a), a)
        self.assertEqual(self.page("resource=%s&after=0" % res_b), b)

    def test_subject_filter(self):
        res = fresh_resource()
        evs = self.publish(event(resource=res, subject="/party/1"), event(resource=res, subject="/party/11"),
                           event(resource=res), event(resource=res, subject="/party/1"),
                           event(resource=res, subject="/PARTY/1"), event(resource=res, subject="/party/"))
        self.assertEqual(self.all_events("resource=%s&after=0&subject=/party/1" % res), [evs[0], evs[3]])
        self.assertEqual(self.all_events("resource=%s&after=0&subject=/party/11" % res), [evs[1]])
        self.assertEqual(self.all_events("resource=%s&after=0&subject=/party" % res), [])

    def test_percent_encoded_query_values(self):
        res = fresh_resource()
        evs = self.publish(event(resource=res, subject="/party/1"), event(resource=res, subject="/party/2"))
        enc_res = res.replace(":", "%3A")
        self.assertEqual(self.page("resource=%s&after=0" % enc_res), evs)
        self.assertEqual(self.page("resource=%s&after=0&subject=%%2Fparty%%2F2" % res), [evs[1]])
        self.assertEqual(self.page("resource=%s&after=%s" % (res, evs[0]["id"].replace("-", "%2D"))), [evs[1]])

    def test_alternative_subject_header(self):
        res = fresh_resource()
        evs = self.publish(
            event(resource=res, subject="/party/5", alternativesubject="/person/123"),
            event(resource=res, subject="/party/6", alternativesubject="/person/456"),
            event(resource=res, subject="/party/5", alternativesubject="/person/123"),
            event(resource=res, subject="/person/123"),
            event(resource=res, alternativesubject="/person/1234"),
        )
        self.assertEqual(self.all_events("resource=%s&after=0" % res, {ALT: "/person/123"}), [evs[0], evs[2]])
        self.assertEqual(self.all_events("resource=%s&after=0" % res, {ALT: "/person/456"}), [evs[1]])

    def test_type_filters(self):
        res = fresh_resource()
        types = ["a.b.created", "a.b.deleted", "a.c.created", "A.b.created", "a.bb.created", "a.b"]
        evs = self.publish(*[event(resource=res, type=t) for t in types])
        by_type = dict(zip(types, evs))

        def q(*patterns):
            query = "resource=%s&after=0" % res + "".join("&type=" + p for p in patterns)
            return [e["type"] for e in self.all_events(query)]

        self.assertEqual(q("a.b.created"), ["a.b.created"])
        self.assertEqual(q("a.b"), ["a.b"])
        self.assertEqual(q("a.b.created", "a.c.created"), ["a.b.created", "a.c.created"])
        self.assertEqual(q("a.c.created", "a.b.created"), ["a.b.created", "a.c.created"])
        self.assertEqual(q("a.b.%25"), ["a.b.created", "a.b.deleted"])
        self.assertEqual(q("a.b%25"), ["a.b.created", "a.b.deleted", "a.bb.created", "a.b"])
        self.assertEqual(q("a._.created"), ["a.b.created", "a.c.created"])
        self.assertEqual(q("%25.created"), ["a.b.created", "a.c.created", "A.b.created", "a.bb.created"])
        self.assertEqual(q("A.%25"), ["A.b.created"])
        self.assertEqual(q("a.B.created"), [])
        self.assertEqual(q("a.b.create"), [])
        self.assertEqual(q("a.b._"), [])
        self.assertEqual(q("%25"), types)
        self.assertEqual(q("a.b.%25", "A.%25"), ["a.b.created", "a.b.deleted", "A.b.created"])
        self.assertEqual(q("nomatch"), [])
        self.assertEqual(set(by_type), set(types))

    def test_time_in_utc(self):
        res = fresh_resource()
        ev = event(resource=res, time="2024-05-01T12:30:00+02:00")
        self.publish(ev)
        self.assertEqual(self.page("resource=%s&after=0" % res), [dict(ev, time="2024-05-01T10:30:00Z")])

    # --- next links --------------------------------------------------------------------------

    def test_next_link_exact(self):
        res, evs = self.seed(5, subject="/party/7", type="x.y")
        base = self.srv.base_url + POLL_PATH
        r = self.poll("resource=%s&after=0&size=2&type=x.y&subject=/party/7" % res)
        self.assertEqual(self.assertPollPage(r), evs[:2])
        self.assertEqual(r.headers.get("next"),
                         "%s?after=%s&resource=%s&size=2&type=x.y&subject=/party/7" % (base, evs[1]["id"], res))
        # the order of the other parameters is kept; after may come anywhere in the request
        r = self.poll("size=3&after=%s&resource=%s" % (evs[0]["id"], res))
        self.assertEqual(self.assertPollPage(r), evs[1:4])
        self.assertEqual(r.headers.get("next"), "%s?after=%s&size=3&resource=%s" % (base, evs[3]["id"], res))
        # a non-empty last page still has next; the page after it is empty without next
        r = self.poll("resource=%s&after=%s" % (res, evs[2]["id"]))
        self.assertEqual(self.assertPollPage(r), evs[3:])
        self.assertEqual(r.headers.get("next"), "%s?after=%s&resource=%s" % (base, evs[4]["id"], res))
        r = self.srv.keepalive_request("GET", self.srv.path_of(r.headers["next"]), None,
                                       {"Authorization": "Bearer " + self.sub_tok})
        self.assertEqual(self.assertPollPage(r), [])
        self.assertNotIn("next", r.headers)

    def test_next_link_repeated_type(self):
        res = fresh_resource()
        evs = self.publish(event(resource=res, type="t.a"), event(resource=res, type="t.b"))
        r = self.poll("resource=%s&type=t.a&after=0&type=t.b" % res)
        self.assertEqual(self.assertPollPage(r), evs)
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&resource=%s&type=t.a&type=t.b"
                         % (self.srv.base_url, POLL_PATH, evs[1]["id"], res))

    def test_next_link_keeps_request_order(self):
        # "followed by every other query parameter of the request in order" (api.md §2)
        res = fresh_resource()
        evs = self.publish(event(resource=res, type="t.a"), event(resource=res, type="t.b"))
        r = self.poll("type=t.a&resource=%s&type=t.b&after=0" % res)
        self.assertEqual(self.assertPollPage(r), evs)
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&type=t.a&resource=%s&type=t.b"
                         % (self.srv.base_url, POLL_PATH, evs[1]["id"], res))

    def test_next_link_alternative_subject(self):
        res = fresh_resource()
        evs = self.publish(event(resource=res, subject="/party/42", alternativesubject="/person/999"),
                           event(resource=res, subject="/party/43", alternativesubject="/person/999"))
        r = self.poll("resource=%s&after=0" % res, {ALT: "/person/999"})
        self.assertEqual(self.assertPollPage(r), evs)
        self.assertEqual(r.headers.get("next"), "%s%s?after=%s&resource=%s&subject=/party/42"
                         % (self.srv.base_url, POLL_PATH, evs[1]["id"], res))

    def test_follow_next_pages_everything(self):
        res, evs = self.seed(7)
        events, pages = self.srv.poll_all("resource=%s&after=0&size=2" % res, self.sub_tok)
        self.assertEqual([len(self.assertPollPage(p)) for p in pages], [2, 2, 2, 1, 0])
        self.assertEqual(events, evs)
        self.assertNotIn("next", pages[-1].headers)
        # more events arrive: the last next link picks them up
        later = self.publish(event(resource=res), event(resource=res))
        last_link = pages[-2].headers["next"]
        r = self.srv.keepalive_request("GET", self.srv.path_of(last_link), None,
                                       {"Authorization": "Bearer " + self.sub_tok})
        self.assertEqual(self.assertPollPage(r), later)


class PollBaseUrlTest(BBTestCase):
    def test_next_uses_base_url(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all",
                                "--base-url", "https://events.example.test:8443")
        res = fresh_resource()
        ev = event(resource=res)
        self.assertStatus(srv.publish(ev), 200)
        r = srv.poll("resource=%s&after=0" % res)
        self.assertEqual(self.assertPollPage(r), [ev])
        self.assertEqual(r.headers.get("next"),
                         "https://events.example.test:8443%s?after=%s&resource=%s" % (POLL_PATH, ev["id"], res))


if __name__ == "__main__":
    unittest.main()
