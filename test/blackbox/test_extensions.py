"""CloudEvents beyond Altinn (extensions), part 1: publish in binary and batch mode (api.md §1), and the
subscription extension fields as the API sees them (§4): `filters` (every CloudEvents Subscriptions API
dialect, delivered end to end or not; compile errors; GET shape; dedupe), `contentMode` and
`signingSecret` validation, and the secret never being readable. Deliveries as received (signatures,
content modes, Retry-After, 410) are in test_extensions_delivery.py."""

import base64
import datetime
import json
import os
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BBTestCase, JSON_UTF8, PUBLISH_PATH, SCOPE_PUBLISH, SCOPE_SUBSCRIBE,  # noqa: E402
                     event, fresh_resource, make_token, new_secret_file, new_signing_secret, raw_send)
from receiver import Receiver  # noqa: E402

BATCH_CT = "application/cloudevents-batch+json"
MISSING_ID = "CloudEvent is missing required attributes: id"
FILTERS_PREFIX = "Invalid filters: "
SECRET_MSG = "signingSecret must be whsec_ followed by the base64 of 24 to 64 bytes."
MODE_MSG = "contentMode must be one of structured, cloudevents, binary."
QUIET = 0.6  # seconds to be sure an event that is not delivered really is not (deliveries take ms)


class ExtTestBase(BBTestCase):
    """A dev-profile server with `--auth jwt`, allow-all authorization, a 300 ms retry schedule, a fast
    handshake schedule, and one receiver. Shared by both test_extensions files."""

    RETRY_SCHEDULE = (0.3, 0.3, 0.3)  # 4 attempts in all
    CLASS_SERVER = True  # False: each test starts its own with start_ext_server()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hendelse-bb-ext-")
        cls.secret_file, cls.secret = new_secret_file(cls.tmp.name)
        cls.recv = Receiver()
        cls.tok = make_token(cls.secret, scope=SCOPE_SUBSCRIBE + " " + SCOPE_PUBLISH, org="ttd")
        if cls.CLASS_SERVER:
            cls.srv = cls.start_class_server(*cls.server_args(cls.RETRY_SCHEDULE))

    @classmethod
    def server_args(cls, schedule):
        return ("--dev", "--auth", "jwt", "--jwt-hs256-secret-file", cls.secret_file, "--authz", "allow-all",
                "--retry-schedule", ",".join("%dms" % round(d * 1000) for d in schedule),
                "--validation-schedule", "100ms,100ms,100ms")

    def start_ext_server(self, schedule=None):
        """A server of this test alone (stopped at its end), as self.srv."""
        self.srv = self.start_server(*self.server_args(schedule or self.RETRY_SCHEDULE))
        return self.srv

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.recv.close()
            cls.tmp.cleanup()

    # helpers ----------------------------------------------------------------------------------

    def create(self, body):
        return self.srv.create_subscription(body, self.tok)

    def assertCreated(self, resp):
        self.assertStatus(resp, 201)
        sub = resp.json()
        self.assertIsInstance(sub, dict, repr(resp))
        self.assertIsInstance(sub.get("id"), int, repr(resp))
        return sub

    def assertJsonString(self, resp, status=400):
        """status with a JSON string body (Content-Type application/json; charset=utf-8); returns it."""
        self.assertStatus(resp, status)
        self.assertEqual(resp.headers.get("content-type"), JSON_UTF8, repr(resp))
        try:
            msg = resp.json()
        except ValueError:
            self.fail("body is not JSON: %r" % (resp,))
        self.assertIsInstance(msg, str, "body is not a JSON string: %r" % (resp,))
        return msg

    def assertFieldRejected(self, resp, field, message):
        """A value of the wrong JSON type: 400, either the field's own JSON string message or a
        validation problem naming the field (as for every other subscription field of the wrong type)."""
        self.assertStatus(resp, 400)
        ct = (resp.headers.get("content-type") or "").split(";")[0].strip()
        if ct == "application/problem+json":
            body = self.assertProblemJson(resp, 400)
            self.assertIn(field.lower(), [k.lower().lstrip("$.") for k in (body.get("errors") or {})],
                          "the problem names the field: %r" % (resp,))
        else:
            self.assertEqual(self.assertJsonString(resp, 400), message)

    def subscribe(self, resource, path=None, event_answer=None, **fields):
        """Creates a subscription on the class receiver, waits until validated; returns (sub, path)."""
        path = path or self.recv.unique_path("ext")
        if event_answer is not None:
            self.recv.handshake_then(path, event_answer)
        body = {"endPoint": self.recv.url(path), "resourceFilter": resource}
        body.update(fields)
        sub = self.assertCreated(self.create(body))
        got = self.srv.wait_validated(sub["id"], self.tok, timeout=10)
        self.assertIsNotNone(got)
        self.assertIs(got.get("validated"), True, "subscription %r never validated" % (sub,))
        return sub, path

    def publish(self, ev):
        self.assertStatus(self.srv.publish(ev, self.tok), 200)

    def wait_disabled(self, sub_id, timeout=5.0):
        """Polls GET .../{id} until it shows disabled: true or timeout; returns the last JSON."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.srv.get_subscription(sub_id, self.tok)
            self.assertStatus(r, 200)
            doc = r.json()
            if doc.get("disabled") is True or time.monotonic() >= deadline:
                return doc
            time.sleep(0.05)

    def polled(self, resource):
        return self.assertPollPage(self.srv.poll("resource=%s&after=0&size=1000" % resource, self.tok))

    def delivered_ids(self, path):
        return [r.json()["id"] for r in self.recv.events(path)]


# ------------------------------------------------------------------------------------------------
# publish: binary mode


def binary_headers(ev_attrs, content_type):
    """ce- headers for the attributes in ev_attrs (values used verbatim) plus Content-Type."""
    h = {"Content-Type": content_type} if content_type is not None else {}
    for k, v in ev_attrs.items():
        h["ce-" + k] = v
    return h


class BinaryPublishTest(ExtTestBase):

    def attrs(self, res, **extra):
        a = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "https://example.com/bin",
             "type": "bin.created", "resource": res}
        a.update(extra)
        return a

    def post_binary(self, attrs, body, content_type):
        return self.srv.publish(body, self.tok, content_type=None, headers=binary_headers(attrs, content_type))

    def test_json_body_is_data(self):
        res = fresh_resource()
        a = self.attrs(res, subject="/party/1")
        data = {"a": [1, 2.5, {"b": None}], "s": "h\u00e9", "t": True}
        r = self.post_binary(a, json.dumps(data), "application/json")
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        want = dict(a, datacontenttype="application/json", data=data)
        self.assertEqual(self.polled(res), [want])

    def test_json_suffix_and_parameters_kept_as_datacontenttype(self):
        res = fresh_resource()
        a1, a2 = self.attrs(res), self.attrs(res)
        r = self.post_binary(a1, b"[1,2,{\"x\":null}]", "application/vnd.example+json")
        self.assertStatus(r, 200)
        r = self.post_binary(a2, b"{\"k\":\"v\"}", "application/json; charset=utf-8")
        self.assertStatus(r, 200)
        got = self.polled(res)
        self.assertEqual(got, [dict(a1, datacontenttype="application/vnd.example+json", data=[1, 2, {"x": None}]),
                               dict(a2, datacontenttype="application/json; charset=utf-8", data={"k": "v"})])

    def test_text_body_is_string_data(self):
        res = fresh_resource()
        a = self.attrs(res)
        text = "h\u00e9llo \u2603\nline 2 {not json}"
        r = self.post_binary(a, text.encode("utf-8"), "text/plain; charset=utf-8")
        self.assertStatus(r, 200)
        self.assertEqual(self.polled(res), [dict(a, datacontenttype="text/plain; charset=utf-8", data=text)])

    def test_binary_body_is_data_base64(self):
        res = fresh_resource()
        a1, a2 = self.attrs(res), self.attrs(res)
        blob = bytes(range(256)) + b"\x00\xff"
        r = self.post_binary(a1, blob, "application/octet-stream")
        self.assertStatus(r, 200)
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(100)
        r = self.post_binary(a2, png, "image/png")
        self.assertStatus(r, 200)
        got = self.polled(res)
        self.assertEqual(got, [
            dict(a1, datacontenttype="application/octet-stream", data_base64=base64.b64encode(blob).decode()),
            dict(a2, datacontenttype="image/png", data_base64=base64.b64encode(png).decode()),
        ])
        self.assertEqual(base64.b64decode(got[0]["data_base64"]), blob)

    def test_header_values_percent_decoded(self):
        res = fresh_resource()
        a = self.attrs(res)
        headers = binary_headers(a, "application/json")
        headers["ce-subject"] = "/party/%C3%A6%20%22q%22%25"
        headers["ce-source"] = "https://example.com/a%2Fb?x=1%261"
        headers["ce-myext"] = "a+b%7E%E2%98%83"
        headers["CE-Other"] = "Upper%2dCase"   # header names are case-insensitive
        r = self.srv.publish(b"{}", self.tok, content_type=None, headers=headers)
        self.assertStatus(r, 200)
        got = self.polled(res)
        self.assertEqual(len(got), 1, repr(got))
        ev = got[0]
        self.assertEqual(ev["subject"], "/party/\u00e6 \"q\"%")
        self.assertEqual(ev["source"], "https://example.com/a/b?x=1&1")
        self.assertEqual(ev["myext"], "a+b~\u2603")
        self.assertEqual(ev["other"], "Upper-Case")
        self.assertEqual(ev["data"], {})
        self.assertEqual(ev["datacontenttype"], "application/json")

    def test_time_and_extensions(self):
        res = fresh_resource()
        a = self.attrs(res, time="2024-05-01T12:00:00%2B02:00", prio="7", dataschema="https://example.com/s.json")
        r = self.post_binary(a, "x", "text/plain")
        self.assertStatus(r, 200)
        ev = self.polled(res)[0]
        self.assertTrue(ev["time"].endswith("Z"), ev)
        got = datetime.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
        self.assertEqual(got, datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc))
        self.assertEqual(ev["prio"], "7")
        self.assertEqual(ev["dataschema"], "https://example.com/s.json")
        self.assertEqual(ev["data"], "x")

    def test_missing_id_400(self):
        res = fresh_resource()
        a = self.attrs(res)
        del a["id"]
        r = self.post_binary(a, b"{}", "application/json")
        self.assertValidationProblem(r, MISSING_ID)
        self.assertEqual(self.polled(res), [])

    def test_structured_rules_apply(self):
        res = fresh_resource()
        # each one a rule a structured event is held to
        a = self.attrs(res, specversion="0.3")
        self.assertValidationProblem(self.post_binary(a, b"{}", "application/json"))
        a = self.attrs(res)
        del a["type"]
        self.assertValidationProblem(self.post_binary(a, b"{}", "application/json"),
                                     "CloudEvent is missing required attributes: type")
        a = self.attrs(res, time="yesterday")
        self.assertValidationProblem(self.post_binary(a, b"{}", "application/json"))
        a = self.attrs(res)
        del a["resource"]
        self.assertDetailProblem(self.post_binary(a, b"{}", "application/json"),
                                 "A 'resource' property must be defined.")
        a = self.attrs("urn:altinn:resource:UPPER")
        self.assertDetailProblem(self.post_binary(a, b"{}", "application/json"),
                                 "'Resource' must be a valid urn.")
        # a JSON content type with a body that is not JSON
        a = self.attrs(res)
        self.assertValidationProblem(self.post_binary(a, b"{not json", "application/json"))
        # malformed percent-encoding, and an escape that is not UTF-8
        for bad in ("/p/%G1", "/p/%", "/p/%FF"):
            with self.subTest(subject=bad):
                a = self.attrs(res, subject=bad)
                self.assertValidationProblem(self.post_binary(a, b"{}", "application/json"))
        self.assertEqual(self.polled(res), [])

    def raw_binary(self, ev_id, res, extra_header_lines):
        """A binary publish written byte by byte (so header whitespace is exactly as given); returns the
        status line."""
        req = (b"POST " + PUBLISH_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Authorization: Bearer " + self.tok.encode() + b"\r\n"
               b"Content-Type: application/json\r\nce-specversion: 1.0\r\nce-id: " + ev_id.encode() +
               b"\r\nce-source: https://example.com/raw\r\nce-type: raw.t\r\nce-resource: " + res.encode() +
               b"\r\n" + extra_header_lines + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        got = raw_send(self.srv.port, req, half_close=False)
        return got.split(b"\r\n", 1)[0].decode("latin-1")

    def test_empty_header_value_is_empty(self):
        # "ce-subject:" with nothing after the colon is an empty subject, which the structured rules
        # refuse ("subject, when present, is a non-empty string"); it must not become something else
        res = fresh_resource()
        for i, line in enumerate((b"ce-subject:\r\n", b"ce-subject: \r\n", b"ce-subject:%20\r\n")):
            with self.subTest(line=line):
                status = self.raw_binary("empty-%d-%s" % (i, uuid.uuid4()), res, line)
                if line == b"ce-subject:%20\r\n":
                    self.assertIn(" 200 ", status, "a percent-encoded space is a one-space subject")
                else:
                    self.assertIn(" 400 ", status, "an empty ce-subject is an empty subject: %r" % (line,))
        got = self.polled(res)
        self.assertEqual([e["subject"] for e in got], [" "], repr(got))

    def test_header_value_whitespace_is_not_part_of_the_value(self):
        # RFC 9110 5.5: leading and trailing OWS (spaces, tabs) around a field value are not part of it
        res = fresh_resource()
        for i, line in enumerate((b"ce-subject:   /party/1  \r\n", b"ce-subject:\t/party/1\t\r\n")):
            with self.subTest(line=line):
                status = self.raw_binary("ows-%d-%s" % (i, uuid.uuid4()), res, line)
                self.assertIn(" 200 ", status, repr(line))
        got = self.polled(res)
        self.assertEqual([e.get("subject") for e in got], ["/party/1", "/party/1"], repr(got))

    def test_content_type_whitespace_is_not_part_of_the_value(self):
        # the same for Content-Type, which becomes datacontenttype
        res = fresh_resource()
        req = (b"POST " + PUBLISH_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Authorization: Bearer " + self.tok.encode() + b"\r\n"
               b"Content-Type: text/plain  \r\nce-specversion: 1.0\r\nce-id: ows-ct\r\n"
               b"ce-source: https://example.com/raw\r\nce-type: raw.t\r\nce-resource: " + res.encode() +
               b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        status = raw_send(self.srv.port, req, half_close=False).split(b"\r\n", 1)[0].decode("latin-1")
        self.assertIn(" 200 ", status, "Content-Type: 'text/plain  ' is text/plain")
        self.assertEqual([(e.get("datacontenttype"), e.get("data")) for e in self.polled(res)], [("text/plain", "hi")])

    def test_too_large_413(self):
        res = fresh_resource()
        r = self.post_binary(self.attrs(res), b"x" * (300 * 1024), "text/plain")
        self.assertProblemJson(r, 413)
        self.assertEqual(self.polled(res), [])

    def test_without_ce_specversion_415(self):
        res = fresh_resource()
        a = self.attrs(res)
        del a["specversion"]
        r = self.post_binary(a, b"{}", "application/json")
        self.assertStatus(r, 415)
        self.assertEqual(self.polled(res), [])

    def test_duplicate_binary_stored_once(self):
        res = fresh_resource()
        a = self.attrs(res)
        self.assertStatus(self.post_binary(a, b"1", "application/json"), 200)
        self.assertStatus(self.post_binary(a, b"1", "application/json"), 200)
        self.assertEqual(len(self.polled(res)), 1)


# ------------------------------------------------------------------------------------------------
# publish: batch mode


def stored_form(ev):
    """What the store keeps of a valid structured event (datacontenttype defaulted with data)."""
    ev = dict(ev)
    if "data" in ev and "datacontenttype" not in ev:
        ev["datacontenttype"] = "application/json"
    return ev


def problem_messages(resp):
    """Every message of a problem body: errors.* entries and detail."""
    body = resp.json()
    out = []
    for v in (body.get("errors") or {}).values():
        out.extend(v)
    if "detail" in body:
        out.append(body["detail"])
    return out


class BatchPublishTest(ExtTestBase):

    def post_batch(self, body, content_type=BATCH_CT):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.srv.publish(data, self.tok, content_type=content_type)

    def test_all_stored_in_order(self):
        res = fresh_resource()
        evs = [event(resource=res, subject="/party/%d" % i, data={"i": i}) for i in range(7)]
        evs[3] = event(resource=res, data_base64="AAEC", datacontenttype="application/octet-stream")
        evs[5] = event(resource=res, myext=True)
        r = self.post_batch(evs)
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        want = [stored_form(e) for e in evs]
        want[5]["myext"] = "true"
        self.assertEqual(self.polled(res), want)

    def test_charset_parameter(self):
        res = fresh_resource()
        evs = [event(resource=res), event(resource=res)]
        r = self.post_batch(evs, content_type=BATCH_CT + "; charset=utf-8")
        self.assertStatus(r, 200)
        self.assertEqual([e["id"] for e in self.polled(res)], [e["id"] for e in evs])

    def test_invalid_event_rejects_whole_batch(self):
        res = fresh_resource()
        evs = [event(resource=res), event(resource=res, id=None), event(resource=res)]
        r = self.post_batch(evs)
        self.assertValidationProblem(r, "Event at index 1: " + MISSING_ID)
        self.assertEqual(self.polled(res), [], "a rejected batch stores nothing")
        # the same events, the bad one fixed, are then all accepted (none was stored as a duplicate)
        evs[1] = event(resource=res)
        self.assertStatus(self.post_batch(evs), 200)
        self.assertEqual([e["id"] for e in self.polled(res)], [e["id"] for e in evs])

    def test_altinn_rule_names_index(self):
        res = fresh_resource()
        evs = [event(resource=res), event(resource=res), event(resource=None), event(resource=res)]
        r = self.post_batch(evs)
        self.assertProblemJson(r, 400)
        msgs = problem_messages(r)
        self.assertEqual(len(msgs), 1, repr(r))
        self.assertTrue(msgs[0].startswith("Event at index 2: "), repr(r))
        self.assertIn("A 'resource' property must be defined.", msgs[0])
        self.assertEqual(self.polled(res), [])

    def test_last_event_invalid(self):
        res = fresh_resource()
        evs = [event(resource=res) for _ in range(10)] + [event(resource=res, specversion="0.3")]
        r = self.post_batch(evs)
        msg = self.assertValidationProblem(r)
        self.assertTrue(msg.startswith("Event at index 10: "), msg)
        self.assertEqual(self.polled(res), [])

    def test_not_an_object_element(self):
        res = fresh_resource()
        r = self.post_batch([event(resource=res), 5])
        msg = self.assertValidationProblem(r)
        self.assertTrue(msg.startswith("Event at index 1: "), msg)
        self.assertEqual(self.polled(res), [])

    def test_not_an_array_or_not_json(self):
        res = fresh_resource()
        self.assertValidationProblem(self.post_batch(event(resource=res)))
        self.assertValidationProblem(self.post_batch(b"[{\"specversion\":"))
        self.assertValidationProblem(self.post_batch(b""))
        self.assertEqual(self.polled(res), [])

    def test_empty_array(self):
        r = self.post_batch([])
        self.assertStatus(r, 200)
        self.assertEmptyBody(r)
        r = self.post_batch(b" [ ] ")
        self.assertStatus(r, 200)

    def test_duplicates_stored_once(self):
        res = fresh_resource()
        a, b = event(resource=res), event(resource=res)
        self.assertStatus(self.post_batch([a, a, b]), 200)
        self.assertEqual([e["id"] for e in self.polled(res)], [a["id"], b["id"]], "same source and id: stored once")
        self.assertStatus(self.post_batch([b, a]), 200)
        self.assertEqual([e["id"] for e in self.polled(res)], [a["id"], b["id"]])

    def test_too_large_event_413_names_index(self):
        res = fresh_resource()
        evs = [event(resource=res), event(resource=res, data="x" * (300 * 1024))]
        r = self.post_batch(evs)
        body = self.assertProblemJson(r, 413)
        self.assertIn("index 1", json.dumps(body))
        self.assertEqual(self.polled(res), [])

    def test_batch_delivered_each_once(self):
        res = fresh_resource()
        _, path = self.subscribe(res)
        evs = [event(resource=res, data={"n": i}) for i in range(5)]
        self.assertStatus(self.post_batch(evs), 200)
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in evs], path), set())
        time.sleep(QUIET)
        self.assertEqual(sorted(self.delivered_ids(path)), sorted(e["id"] for e in evs))


# ------------------------------------------------------------------------------------------------
# subscriptions: filters end to end


class FilterDeliveryTest(ExtTestBase):

    def check(self, filters, matching, nonmatching, **fields):
        """Subscribes with filters (and Altinn fields) on a fresh resource, publishes the non-matching
        events (dicts of attributes) and then the matching ones, and checks that exactly the matching
        ones are delivered."""
        res = fresh_resource()
        _, path = self.subscribe(res, filters=filters, **fields)
        non = [event(resource=res, **attrs) for attrs in nonmatching]
        yes = [event(resource=res, **attrs) for attrs in matching]
        for ev in non + yes:
            self.publish(ev)
        self.assertEqual(self.recv.wait_event_ids([e["id"] for e in yes], path), set(),
                         "matching events not delivered for filters %r" % (filters,))
        time.sleep(QUIET)
        got = self.delivered_ids(path)
        names = {e["id"]: attrs for e, attrs in zip(non + yes, nonmatching + matching)}
        self.assertEqual(sorted(got), sorted(e["id"] for e in yes),
                         "filters %r: delivered %r" % (filters, [names.get(i) for i in got]))

    def test_exact(self):
        self.check([{"exact": {"type": "order.created", "subject": "/party/1"}}],
                   [{"type": "order.created", "subject": "/party/1"}],
                   [{"type": "order.created", "subject": "/party/2"},
                    {"type": "order.CREATED", "subject": "/party/1"},   # values are case-sensitive
                    {"type": "order.created"},                          # no subject
                    {"type": "order.created.x", "subject": "/party/1"}])

    def test_exact_extension_attribute(self):
        self.check([{"exact": {"region": "north"}}],
                   [{"region": "north"}],
                   [{"region": "south"}, {"region": "northwest"}, {}])

    def test_prefix(self):
        self.check([{"prefix": {"type": "com.example."}}],
                   [{"type": "com.example.order"}, {"type": "com.example."}],
                   [{"type": "org.example.order"}, {"type": "com.example"}, {"type": "COM.example.order"}])

    def test_suffix(self):
        self.check([{"suffix": {"subject": ".pdf"}}],
                   [{"subject": "/docs/a.pdf"}],
                   [{"subject": "/docs/a.pdf.txt"}, {"subject": "/docs/a.PDF"}, {}])

    def test_all(self):
        self.check([{"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": ".created"}},
                             {"prefix": {"source": "https://example.com/"}}]}],
                   [{"type": "com.x.created"}],
                   [{"type": "com.x.deleted"}, {"type": "org.x.created"},
                    {"type": "com.x.created", "source": "https://other.example/src"}])

    def test_any(self):
        self.check([{"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}, {"prefix": {"subject": "/vip/"}}]}],
                   [{"type": "a"}, {"type": "b"}, {"type": "c", "subject": "/vip/1"}],
                   [{"type": "c"}, {"type": "ab"}, {"type": "c", "subject": "/party/vip/"}])

    def test_not(self):
        self.check([{"not": {"exact": {"type": "noise"}}}],
                   [{"type": "signal"}, {"type": "noise2"}],
                   [{"type": "noise"}])

    def test_not_of_any(self):
        self.check([{"not": {"any": [{"exact": {"type": "a"}}, {"suffix": {"type": ".x"}}]}}],
                   [{"type": "b"}],
                   [{"type": "a"}, {"type": "b.x"}])

    def test_sql(self):
        self.check([{"sql": "type LIKE 'com.%' AND INT(prio) >= 5"}],
                   [{"type": "com.x", "prio": "7"}, {"type": "com.y", "prio": 5}],
                   [{"type": "com.x", "prio": "3"}, {"type": "org.x", "prio": "9"}])

    def test_sql_functions_and_in(self):
        self.check([{"sql": "UPPER(subject) = '/PARTY/1' OR (type IN ('x', 'y') AND subject = '/s')"}],
                   [{"subject": "/party/1"}, {"subject": "/Party/1"}, {"type": "y", "subject": "/s"}],
                   [{"subject": "/party/2"}, {"type": "x", "subject": "/t"}, {"type": "z", "subject": "/s"}])

    def test_sql_exists(self):
        self.check([{"sql": "NOT EXISTS subject"}],
                   [{}],
                   [{"subject": "/party/1"}])

    def test_filters_are_anded(self):
        self.check([{"exact": {"type": "t1"}}, {"prefix": {"subject": "/party/"}}, {"sql": "subject <> '/party/9'"}],
                   [{"type": "t1", "subject": "/party/1"}],
                   [{"type": "t2", "subject": "/party/1"}, {"type": "t1", "subject": "/org/1"},
                    {"type": "t1", "subject": "/party/9"}])

    def test_anded_with_altinn_filters(self):
        self.check([{"prefix": {"subject": "/p/"}}],
                   [{"type": "t1", "subject": "/p/1"}],
                   [{"type": "t2", "subject": "/p/1"},   # the filter holds, typeFilter does not
                    {"type": "t1", "subject": "/q/1"}],  # typeFilter holds, the filter does not
                   typeFilter="t1")


# ------------------------------------------------------------------------------------------------
# subscriptions: the extension fields as the API sees them


class SubscriptionFieldsTest(ExtTestBase):

    def body(self, **fields):
        b = {"endPoint": self.recv.url(self.recv.unique_path("fld")), "resourceFilter": fresh_resource()}
        b.update(fields)
        return b

    def test_bad_filters(self):
        before = self.srv.list_subscriptions(self.tok).json()["count"]
        cases = [
            ([{"sql": "type ="}], ["syntax"]),
            ([{"sql": "type = 'a' AND"}], ["syntax"]),
            ([{"sql": "(type = 'a'"}], ["syntax"]),
            ([{"sql": ""}], []),
            ([{"sql": "NOSUCHFN(type) = 'a'"}], ["function", "nosuchfn"]),
            ([{"sql": "LENGTH(type, subject) = 3"}], ["argument"]),
            ([{"sql": "LENGTH() = 0"}], ["argument"]),
            ([{"sql": "LENGTH(type)"}], ["boolean"]),
            ([{"regex": {"type": "a"}}], ["regex"]),
            ([{"exact": {"type": "a"}}, {"sqlx": "true"}], ["sqlx"]),
            ({"exact": {"type": "a"}}, ["array"]),
            ("type = 'a'", ["array"]),
            ([{"exact": "order"}], ["object"]),
            ([{"exact": {"type": 5}}], ["string"]),
            ([{"sql": 42}], ["string"]),
            ([{"all": {"exact": {"type": "a"}}}], ["array"]),
            ([{"any": "x"}], ["array"]),
            ([{"not": [{"exact": {"type": "a"}}]}], []),
            (["exact"], ["object"]),
            ([{}], []),
            ([{"exact": {"type": "a"}, "prefix": {"type": "b"}}], []),
            ([{"all": [{"exact": {"type": "a"}}, {"nope": {}}]}], ["nope"]),
        ]
        for filters, words in cases:
            with self.subTest(filters=filters):
                r = self.create(self.body(filters=filters))
                msg = self.assertJsonString(r, 400)
                self.assertTrue(msg.startswith(FILTERS_PREFIX), "message %r" % msg)
                self.assertGreater(len(msg), len(FILTERS_PREFIX), "says what is wrong: %r" % msg)
                for w in words:
                    self.assertIn(w, msg.lower(), "message %r should say what is wrong" % msg)
        self.assertEqual(self.srv.list_subscriptions(self.tok).json()["count"], before,
                         "no subscription was stored by a rejected request")

    def test_filters_get_shape(self):
        filters = [{"exact": {"type": "a.b", "subject": "/party/1"}},
                   {"any": [{"prefix": {"source": "https://example.com/"}}, {"not": {"suffix": {"type": ".x"}}}]},
                   {"sql": "type LIKE 'a.%' AND EXISTS subject"}]
        r = self.create(self.body(filters=filters))
        sub = self.assertCreated(r)
        self.assertEqual(sub["filters"], filters)
        g = self.srv.get_subscription(sub["id"], self.tok)
        self.assertStatus(g, 200)
        self.assertEqual(g.json()["filters"], filters)
        compact = json.dumps(filters, separators=(",", ":")).encode()
        self.assertIn(b"\"filters\":" + compact, g.body, "filters are returned as given, compact")
        lst = self.srv.list_subscriptions(self.tok).json()
        mine = [s for s in lst["subscriptions"] if s["id"] == sub["id"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["filters"], filters)
        # without filters there is no filters key
        plain = self.assertCreated(self.create(self.body()))
        self.assertNotIn("filters", plain)
        self.assertNotIn("filters", self.srv.get_subscription(plain["id"], self.tok).json())

    def test_dedupe_includes_filters(self):
        base = self.body()
        f1 = [{"exact": {"type": "a"}}]
        f2 = [{"exact": {"type": "b"}}]
        a = self.assertCreated(self.create(dict(base, filters=f1)))
        b = self.assertCreated(self.create(dict(base, filters=f1)))
        self.assertEqual(a["id"], b["id"], "the same subscription with the same filters is the same one")
        c = self.assertCreated(self.create(dict(base, filters=f2)))
        self.assertNotEqual(c["id"], a["id"], "other filters make another subscription")
        d = self.assertCreated(self.create(base))
        self.assertNotIn(d["id"], (a["id"], c["id"]), "no filters is not the same as filters")
        e = self.assertCreated(self.create(dict(base)))
        self.assertEqual(e["id"], d["id"])
        f = self.assertCreated(self.create(dict(base, filters=f1 + [{"sql": "true"}])))
        self.assertNotIn(f["id"], (a["id"], c["id"], d["id"]))

    def test_content_mode_values(self):
        for mode in ("cloudevents", "binary"):
            with self.subTest(mode=mode):
                sub = self.assertCreated(self.create(self.body(contentMode=mode)))
                self.assertEqual(sub.get("contentMode"), mode)
                self.assertEqual(self.srv.get_subscription(sub["id"], self.tok).json().get("contentMode"), mode)
        sub = self.assertCreated(self.create(self.body(contentMode="structured")))
        self.assertNotIn("contentMode", sub)
        self.assertNotIn("contentMode", self.srv.get_subscription(sub["id"], self.tok).json())
        for bad in ("xml", "", "binary ", "json"):
            with self.subTest(bad=bad):
                msg = self.assertJsonString(self.create(self.body(contentMode=bad)), 400)
                self.assertEqual(msg, MODE_MSG)
        for bad in (1, True, ["binary"], {"mode": "binary"}):
            with self.subTest(bad=bad):
                self.assertFieldRejected(self.create(self.body(contentMode=bad)), "contentMode", MODE_MSG)

    def test_signing_secret_values(self):
        for n in (24, 32, 64):
            with self.subTest(nbytes=n):
                secret, _ = new_signing_secret(n)
                self.assertCreated(self.create(self.body(signingSecret=secret)))
        b64 = lambda n: base64.b64encode(os.urandom(n)).decode()  # noqa: E731
        bad = ["whsec_" + b64(23), "whsec_" + b64(65), "whsec_" + b64(16), b64(32), "whsec_",
               "WHSEC_" + b64(32), "whsec_" + "!" * 44, "whsec_" + b64(32)[:-1] + "$", ""]
        for secret in bad:
            with self.subTest(secret=secret):
                msg = self.assertJsonString(self.create(self.body(signingSecret=secret)), 400)
                self.assertEqual(msg, SECRET_MSG)
        for secret in (12345, True, ["whsec_" + b64(32)]):
            with self.subTest(secret=secret):
                self.assertFieldRejected(self.create(self.body(signingSecret=secret)), "signingSecret",
                                         SECRET_MSG)

    def test_secret_never_readable(self):
        secret, key = new_signing_secret(32)
        key_b64 = secret[len("whsec_"):]
        body = self.body(signingSecret=secret, contentMode="cloudevents")
        responses = []
        r = self.create(body)
        sub = self.assertCreated(r)
        responses.append(("create", r))
        responses.append(("create again (dedupe)", self.create(dict(body))))
        self.assertEqual(responses[-1][1].json()["id"], sub["id"])
        responses.append(("get", self.srv.get_subscription(sub["id"], self.tok)))
        responses.append(("list", self.srv.list_subscriptions(self.tok)))
        for what, resp in responses:
            with self.subTest(what=what):
                self.assertIn(resp.status, (200, 201), repr(resp))
                text = resp.body.decode("utf-8")
                self.assertNotIn("signingsecret", text.lower())
                self.assertNotIn(key_b64, text)
                self.assertNotIn(key_b64.replace("/", "\\/"), text)
                self.assertNotIn("whsec_", text)
                for k, v in resp.headers.items():
                    self.assertNotIn(key_b64, v)
        # another secret on the same subscription: still nothing in the answer
        other, _ = new_signing_secret(32)
        r2 = self.assertCreated(self.create(dict(body, signingSecret=other)))
        self.assertNotIn("whsec_", json.dumps(r2))


class StoredRecordTest(ExtTestBase):
    """The registry keeps a subscription's strings only in the store once it is created, and reads
    them back for GET, the list, dedupe and the rewrites that set validated/disabled: the answers
    must be byte for byte what they were before, across a clean restart and a kill -9."""

    CLASS_SERVER = False

    def test_get_and_list_bytes_survive_restart(self):
        srv = self.start_ext_server()
        secret, _ = new_signing_secret()
        full = {"endPoint": self.recv.url(self.recv.unique_path("rec") + "?q=1&r=%C3%A6"),
                "resourceFilter": fresh_resource(), "subjectFilter": "/party/500", "typeFilter": "t.x\u00e6",
                "includeSubunits": True, "filters": [{"prefix": {"type": "t."}}, {"sql": "source LIKE '%x%'"}],
                "contentMode": "binary", "signingSecret": secret}
        app = {"endPoint": self.recv.url(self.recv.unique_path("rec")),
               "resourceFilter": "urn:altinn:resource:app_ttd_rec",
               "sourceFilter": "https://ttd.apps.altinn.no/ttd/rec"}
        a = self.assertCreated(self.create(full))
        b = self.assertCreated(self.create(app))
        for sub in (a, b):
            got = srv.wait_validated(sub["id"], self.tok, timeout=10)
            self.assertIs(got.get("validated"), True, repr(got))
        get_a = srv.get_subscription(a["id"], self.tok)
        get_b = srv.get_subscription(b["id"], self.tok)
        listed = srv.list_subscriptions(self.tok)
        for r in (get_a, get_b, listed):
            self.assertStatus(r, 200)
            self.assertNotIn(b"signingSecret", r.body)
            self.assertNotIn(secret.encode(), r.body)
        doc = get_a.json()
        for k in ("endPoint", "resourceFilter", "subjectFilter", "typeFilter", "includeSubunits", "filters",
                  "contentMode"):
            self.assertEqual(doc.get(k), full[k], k)
        self.assertEqual(doc.get("consumer"), "/org/ttd")
        self.assertEqual(doc.get("createdBy"), "/org/ttd")
        self.assertEqual(get_b.json().get("sourceFilter"), app["sourceFilter"])
        self.assertEqual([x["id"] for x in listed.json()["subscriptions"]], [a["id"], b["id"]])

        for how in ("restart", "kill9"):
            srv.restart(sigkill=how == "kill9")
            self.assertEqual(srv.get_subscription(a["id"], self.tok).body, get_a.body, how)
            self.assertEqual(srv.get_subscription(b["id"], self.tok).body, get_b.body, how)
            self.assertEqual(srv.list_subscriptions(self.tok).body, listed.body, how)
            # posting it again after the restart finds it (dedupe reads the stored strings) and
            # answers the same bytes; a different secret is another subscription
            again = self.create(full)
            self.assertStatus(again, 201)
            self.assertEqual(again.body, get_a.body, how)
            other = dict(full, signingSecret=new_signing_secret()[0])
            c = self.assertCreated(self.create(other))
            self.assertNotEqual(c["id"], a["id"])
            self.assertStatus(srv.delete_subscription(c["id"], self.tok), 200)
        self.assertStatus(srv.delete_subscription(a["id"], self.tok), 200)
        self.assertStatus(srv.get_subscription(a["id"], self.tok), 404)
        srv.restart()
        self.assertStatus(srv.get_subscription(a["id"], self.tok), 404)
        self.assertEqual(srv.get_subscription(b["id"], self.tok).body, get_b.body)


if __name__ == "__main__":
    unittest.main()
