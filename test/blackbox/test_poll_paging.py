"""Poll page sizes and paging over a larger store (1005 events). api.md §2 `size` and `next`."""

import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, POLL_PATH, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event,  # noqa: E402
                     bearer, fresh_resource, make_token, new_secret_file, publish_many)

N = 1005


class PollPagingTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-secret-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.srv = cls.start_class_server("--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file,
                                         "--authz", "allow-all")
        cls.tok = make_token(cls.secret, scope=SCOPE_PUBLISH + " " + SCOPE_SUBSCRIBE)
        cls.res = fresh_resource()
        cls.events = [event(resource=cls.res, subject="/party/%d" % (i % 3)) for i in range(N)]
        statuses = publish_many(cls.srv, cls.events, cls.tok, threads=16)
        bad = [s for s in statuses if s != 200]
        if bad:
            raise AssertionError("bulk publish: %d of %d not 200: %r" % (len(bad), N, bad[:5]))
        # another resource, so paging must skip over it
        publish_many(cls.srv, [event() for _ in range(20)], cls.tok, threads=4)
        cls.sent_ids = {e["id"] for e in cls.events}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def page(self, query):
        return self.assertPollPage(self.srv.poll(query, self.tok))

    def full_order(self):
        """Every event of the resource in store order, via size=1000 pages."""
        events, pages = self.srv.poll_all("resource=%s&after=0&size=1000" % self.res, self.tok)
        for p in pages:
            self.assertPollPage(p)
        return events, pages

    def test_everything_stored_once(self):
        events, pages = self.full_order()
        self.assertEqual([len(p.json()) for p in pages], [1000, 5, 0])
        ids = [e["id"] for e in events]
        self.assertEqual(len(ids), len(set(ids)), "duplicates in the poll")
        self.assertEqual(set(ids), self.sent_ids)
        by_id = {e["id"]: e for e in self.events}
        for e in events:
            self.assertEqual(e, by_id[e["id"]])

    def test_default_sizes(self):
        events, _ = self.full_order()
        for q in ("", "&size=0", "&size=-1", "&size=-1000"):
            with self.subTest(size=q):
                self.assertEqual(self.page("resource=%s&after=0%s" % (self.res, q)), events[:50])

    def test_explicit_sizes(self):
        events, _ = self.full_order()
        for size, want in ((1, 1), (10, 10), (51, 51), (999, 999), (1000, 1000), (1001, 1000), (2000, 1000),
                           (2147483647, 1000)):
            with self.subTest(size=size):
                got = self.page("resource=%s&after=0&size=%d" % (self.res, size))
                self.assertEqual(len(got), want)
                self.assertEqual(got, events[:want])

    def test_paging_size_100_no_gaps_no_repeats(self):
        events, _ = self.full_order()
        got, pages = self.srv.poll_all("resource=%s&after=0&size=100" % self.res, self.tok)
        self.assertEqual([len(p.json()) for p in pages], [100] * 10 + [5, 0])
        self.assertEqual([e["id"] for e in got], [e["id"] for e in events])
        # each next link is exact
        for p in pages[:-1]:
            last = p.json()[-1]["id"]
            self.assertEqual(p.headers.get("next"), "%s%s?after=%s&resource=%s&size=100"
                             % (self.srv.base_url, POLL_PATH, last, self.res))
        self.assertNotIn("next", pages[-1].headers)

    def test_paging_with_subject_filter(self):
        events, _ = self.full_order()
        want = [e for e in events if e["subject"] == "/party/1"]
        got, _ = self.srv.poll_all("resource=%s&after=0&subject=/party/1&size=1000" % self.res, self.tok)
        self.assertEqual(got, want)
        got, _ = self.srv.poll_all("resource=%s&after=0&subject=/party/2&size=7" % self.res, self.tok)
        self.assertEqual(got, [e for e in events if e["subject"] == "/party/2"])

    def test_after_in_the_middle(self):
        events, _ = self.full_order()
        got = self.page("resource=%s&after=%s&size=1000" % (self.res, events[500]["id"]))
        self.assertEqual(got, events[501:])

    def test_sparse_match_found_through_next(self):
        # one match among 601 events: whether the server scans it all in one request or stops
        # early with a `next` on an empty page, following the links finds exactly the match
        res = fresh_resource()
        before = [event(resource=res, subject="/party/a") for _ in range(300)]
        rare = event(resource=res, subject="/party/b", type="rare.type")
        after = [event(resource=res, subject="/party/a") for _ in range(300)]
        self.assertEqual(publish_many(self.srv, before, self.tok), [200] * 300)
        self.assertEqual(self.srv.publish(rare, self.tok).status, 200)
        self.assertEqual(publish_many(self.srv, after, self.tok), [200] * 300)
        for q in ("subject=/party/b", "type=rare.type", "type=rare.%25&size=1"):
            with self.subTest(query=q):
                got, pages = self.srv.poll_all("resource=%s&after=0&%s" % (res, q), self.tok)
                self.assertEqual(got, [rare])
                self.assertNotIn("next", pages[-1].headers)
                for p in pages:
                    self.assertPollPage(p)
                    if p.json():
                        self.assertIn("next", p.headers)
        got, pages = self.srv.poll_all("resource=%s&after=0&type=none" % res, self.tok)
        self.assertEqual(got, [])

    def test_big_page(self):
        # 300 events of ~20 KB: one 6 MB page comes back intact
        res = fresh_resource()
        big = [event(resource=res, data={"i": i, "blob": ("%05d" % i) * 4000}) for i in range(300)]
        self.assertEqual(set(publish_many(self.srv, big, self.tok, threads=8)), {200})
        got = self.page("resource=%s&after=0&size=1000" % res)
        want = {e["id"]: dict(e, datacontenttype="application/json") for e in big}
        self.assertEqual(len(got), 300)
        for e in got:
            self.assertEqual(e, want[e["id"]])

    def test_bounded_scan_never_stalls(self):
        # 10,050 non-matching events before the one match: a server that bounds its scan per request
        # answers empty pages with `next` links that always move forward, and the match is found
        res = fresh_resource()
        filler = [event(resource=res, subject="/party/a") for _ in range(10050)]
        self.assertEqual(set(publish_many(self.srv, filler, self.tok, threads=16)), {200})
        rare = event(resource=res, subject="/party/rare")
        self.assertStatus(self.srv.publish(rare, self.tok), 200)
        got, pages = self.srv.poll_all("resource=%s&after=0&subject=/party/rare" % res, self.tok, max_pages=50)
        self.assertEqual(got, [rare])
        links = [p.headers["next"] for p in pages if "next" in p.headers]
        self.assertEqual(len(links), len(set(links)), "a next link repeated: the cursor stalled")
        self.assertNotIn("next", pages[-1].headers)
        self.assertEqual(pages[-1].json(), [])
        got, pages = self.srv.poll_all("resource=%s&after=0&subject=/party/none" % res, self.tok, max_pages=50)
        self.assertEqual(got, [])

    def test_live_tail_no_gaps(self):
        # a reader following `next` links while 8 clients publish sees every event exactly once, in
        # store order
        res = fresh_resource()
        events = [event(resource=res) for _ in range(400)]
        done = threading.Event()
        seen = []
        errors = []

        def reader():
            try:
                conn = self.srv.connection()
                path = "%s?resource=%s&after=0&size=37" % (POLL_PATH, res)
                while True:
                    finished = done.is_set()
                    r = conn.request("GET", path, None, bearer(self.tok))
                    page = self.assertPollPage(r)
                    seen.extend(e["id"] for e in page)
                    if "next" in r.headers:
                        path = self.srv.path_of(r.headers["next"])
                    elif finished:
                        return
            except Exception as e:
                errors.append(e)

        t = threading.Thread(target=reader)
        t.start()
        try:
            statuses = publish_many(self.srv, events, self.tok, threads=8)
        finally:
            done.set()
            t.join(timeout=60)
        self.assertFalse(errors, errors)
        self.assertEqual(statuses, [200] * len(events))
        stored, _ = self.srv.poll_all("resource=%s&after=0&size=1000" % res, self.tok)
        self.assertEqual(len(seen), len(set(seen)), "the tailing reader saw an event twice")
        self.assertEqual(seen, [e["id"] for e in stored])
        self.assertEqual(set(seen), {e["id"] for e in events})


if __name__ == "__main__":
    unittest.main()
