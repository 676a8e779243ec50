"""Authentication modes (`--auth none`, `--dev` = `--auth unverified`) and the `--settle` window.
architecture.md "Command line and config"; api.md §2 (settle window)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, SCOPE_PUBLISH, SCOPE_SUBSCRIBE, event, fresh_resource,  # noqa: E402
                     jwt_encode, claims, make_token)


class AuthNoneTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--auth", "none", "--authz", "allow-all")

    def test_publish_and_poll_without_token(self):
        res = fresh_resource()
        ev = event(resource=res)
        r = self.srv.publish(ev)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        r = self.srv.poll("resource=%s&after=0" % res)
        self.assertEqual(self.assertPollPage(r), [ev])

    def test_validation_still_applies(self):
        self.assertValidationProblem(self.srv.publish(event(id=None)),
                                     "CloudEvent is missing required attributes: id")
        self.assertStatus(self.srv.publish(event(), content_type="application/json"), 415)

    def test_admin_scope_included(self):
        # the default dev identity has every scope: publish, subscribe and publish.admin
        res = fresh_resource()
        evs = [event(resource=res) for _ in range(3)]
        for ev in evs:
            self.assertStatus(self.srv.publish(ev), 200)
        self.assertEqual(self.assertPollPage(self.srv.poll("resource=%s&after=0" % res)), evs)


class DevUnverifiedTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev")

    def bogus(self, **kw):
        """A token with valid claims signed with a secret the server never saw."""
        return make_token("not-the-servers-secret", **kw)

    def test_bogus_signature_accepted(self):
        res = fresh_resource()
        ev = event(resource=res)
        r = self.srv.publish(ev, self.bogus(scope=SCOPE_PUBLISH))
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        r = self.srv.poll("resource=%s&after=0" % res, self.bogus(scope=SCOPE_SUBSCRIBE))
        self.assertEqual(self.assertPollPage(r), [ev])
        # an HS384 or otherwise signed token is read without its signature checked too
        tok = jwt_encode(claims(scope=SCOPE_PUBLISH), "whatever", alg="HS384")
        self.assertStatus(self.srv.publish(event(), tok), 200)

    def test_expired_rejected(self):
        r = self.srv.publish(event(), self.bogus(scope=SCOPE_PUBLISH, ttl=-120))
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_nbf_future_rejected(self):
        r = self.srv.publish(event(), self.bogus(scope=SCOPE_PUBLISH, nbf=int(time.time()) + 600))
        self.assertStatus(r, 401)

    def test_no_token_rejected(self):
        r = self.srv.publish(event())
        self.assertStatus(r, 401)
        self.assertEmptyBody(r)

    def test_garbage_token_rejected(self):
        self.assertStatus(self.srv.publish(event(), "not-a-jwt"), 401)

    def test_scope_still_required(self):
        r = self.srv.publish(event(), self.bogus(scope=SCOPE_SUBSCRIBE))
        self.assertStatus(r, 403)
        self.assertEmptyBody(r)
        r = self.srv.poll("resource=%s&after=0" % fresh_resource(), self.bogus(scope=SCOPE_PUBLISH))
        self.assertStatus(r, 403)


class SettleTest(BBTestCase):
    def test_settle_window_hides_new_events(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all", "--settle", "2s")
        res = fresh_resource()
        ev = event(resource=res)
        t0 = time.monotonic()
        self.assertStatus(srv.publish(ev), 200)
        r = srv.poll("resource=%s&after=0" % res)
        if time.monotonic() - t0 < 1.5:  # only meaningful while we are surely inside the window
            self.assertEqual(self.assertPollPage(r), [])
            self.assertNotIn("next", r.headers)
        deadline = t0 + 2.0 + 3.0
        got = []
        while time.monotonic() < deadline:
            time.sleep(0.25)
            got = self.assertPollPage(srv.poll("resource=%s&after=0" % res))
            if got:
                self.assertGreaterEqual(time.monotonic() - t0, 1.9, "visible before the 2 s window passed")
                break
        self.assertEqual(got, [ev], "event never became visible after the settle window")

    def test_settle_default_zero(self):
        srv = self.start_server("--auth", "none", "--authz", "allow-all")
        res = fresh_resource()
        ev = event(resource=res)
        self.assertStatus(srv.publish(ev), 200)
        self.assertEqual(self.assertPollPage(srv.poll("resource=%s&after=0" % res)), [ev])


if __name__ == "__main__":
    unittest.main()
