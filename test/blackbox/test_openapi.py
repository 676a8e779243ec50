"""The OpenAPI document (docs/openapi.json) against the server: it is what the server serves, every
route the server has is in it (routes found in the source, and every documented path and method
answered by the real binary, every undocumented method refused with 405), and `hendelse --help`
lists exactly the options docs/options.md describes.

Validation of the document by a third-party validator is in test/interop/openapi.test.mjs."""

import glob
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO_ROOT, BBTestCase, media_type, run_cli  # noqa: E402

DOC_FILE = os.path.join(REPO_ROOT, "docs", "openapi.json")
OPTIONS_FILE = os.path.join(REPO_ROOT, "docs", "options.md")
DOC_PATH = "/events/api/v1/openapi.json"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
ROUTE_RE = re.compile(r"/events/api/v1(?:/[A-Za-z0-9_.%{}-]+)*|/health\b|/metrics\b")


def load_doc():
    with open(DOC_FILE, "rb") as f:
        raw = f.read()
    return raw, json.loads(raw)


def template_key(path):
    """A path with every parameter ({id}, %llu, ...) replaced by {}, lower case."""
    path = re.sub(r"\{[^}]*\}", "{}", path)
    path = re.sub(r"%[-0-9.]*(?:ll|l|z|j)?[a-z]", "{}", path)
    return path.rstrip("/").lower()


def string_literals(text):
    """(line number, contents) of every string literal of C source text, comments skipped."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
            continue
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            if c == '"':
                yield line, text[i + 1:j]
            i = j + 1
            continue
        i += 1


def source_routes():
    """Every server path named in a string literal of server/*.c and server/*.h."""
    found = {}
    for name in sorted(glob.glob(os.path.join(REPO_ROOT, "server", "*.[ch]"))):
        with open(name, encoding="utf-8") as f:
            for lineno, lit in string_literals(f.read()):
                for m in ROUTE_RE.finditer(lit):
                    found.setdefault(template_key(m.group(0)),
                                     "%s:%d" % (os.path.basename(name), lineno))
    return found


class OpenApiDocumentTest(unittest.TestCase):
    def test_document_is_json_with_the_api_paths(self):
        _, doc = load_doc()
        self.assertTrue(doc["openapi"].startswith("3."), doc["openapi"])
        for p in ("/events/api/v1/events", "/events/api/v1/subscriptions", "/health", DOC_PATH):
            self.assertIn(p, doc["paths"])
        ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items()
               if m in [x.lower() for x in METHODS]]
        self.assertEqual(len(ids), len(set(ids)), "operationIds are unique")

    def test_every_route_in_the_source_is_documented(self):
        _, doc = load_doc()
        documented = {template_key(p) for p in doc["paths"]}
        routes = source_routes()
        self.assertIn("/events/api/v1/events", routes, "the scan finds the routes")
        for key, where in sorted(routes.items()):
            covered = key in documented or any(d.startswith(key + "/") for d in documented)
            self.assertTrue(covered, "route %s (%s) is not in docs/openapi.json" % (key, where))

    def test_every_documented_path_is_in_the_source(self):
        _, doc = load_doc()
        routes = source_routes()
        for p in doc["paths"]:
            key = template_key(p)
            # a sub-route (".../deadletters") is named relative to its base in the source
            base = key
            while base not in routes and base.count("/") > 1:
                base = base.rsplit("/", 1)[0]
            self.assertIn(base, routes, "documented path %s has no route in server/" % p)


class OpenApiServedTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = cls.start_class_server("--dev", "--auth", "none", "--authz", "allow-all",
                                         "--validation-schedule", "50ms")

    def test_served_document_is_the_file(self):
        raw, _ = load_doc()
        r = self.srv.request("GET", DOC_PATH)
        self.assertStatus(r, 200)
        self.assertEqual(media_type(r.headers.get("content-type")), "application/json")
        self.assertEqual(r.body, raw, "the served document differs from docs/openapi.json")
        # paths compare case-insensitively and take one trailing slash, like every route
        r = self.srv.request("GET", DOC_PATH.upper() + "/")
        self.assertEqual((r.status, r.body), (200, raw))
        r = self.srv.request("HEAD", DOC_PATH)
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.headers.get("content-length"), str(len(raw)))

    def make_subscription(self):
        r = self.srv.request("POST", "/events/api/v1/subscriptions",
                             {"endPoint": "http://127.0.0.1:9/hook",
                              "resourceFilter": "urn:altinn:resource:openapi-probe"},
                             headers={"Content-Type": "application/json"})
        self.assertStatus(r, 201)
        return r.json()["id"]

    def concrete(self, template, sub_id):
        return (template.replace("{id}", str(sub_id)).replace("{org}", "ttd")
                .replace("{app}", "my-app"))

    def test_every_documented_operation_is_answered_and_no_other_method(self):
        _, doc = load_doc()
        keep = self.make_subscription()
        deletes = []
        for template, item in sorted(doc["paths"].items()):
            documented = {m.upper() for m in item if m.upper() in METHODS}
            self.assertTrue(documented, template)
            for method in METHODS:
                if method == "DELETE" and method in documented:
                    deletes.append(template)  # last, on a subscription of its own
                    continue
                path = self.concrete(template, keep)
                if template == "/events/api/v1/app/party":
                    path += "?party=1&after=0"
                r = self.srv.request(method, path)
                if method in documented:
                    self.assertNotIn(r.status, (404, 405), "%s %s: %r" % (method, path, r))
                    listed = item[method.lower()]["responses"]
                    self.assertIn(str(r.status), listed,
                                  "%s %s answered %d, not documented" % (method, path, r.status))
                else:
                    self.assertEqual(r.status, 405, "%s %s is not documented: %r" % (method, path, r))
                    allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
                    self.assertEqual(allow | {"HEAD"}, documented | {"HEAD"},
                                     "Allow of %s vs the document" % path)
        for template in deletes:
            path = self.concrete(template, self.make_subscription())
            r = self.srv.request("DELETE", path)
            self.assertNotIn(r.status, (404, 405), "DELETE %s: %r" % (path, r))
            self.assertIn(str(r.status), doc["paths"][template]["delete"]["responses"])


def help_options(text, section):
    """The --options named in one section ("serve options:", "token options:") of --help."""
    out, on = set(), False
    for line in text.splitlines():
        if line.endswith("options:"):
            on = line.startswith(section)
            continue
        if on:
            out.update(re.findall(r"--[a-z0-9][a-z0-9-]*", line))
    return out


def documented_options(text, heading):
    """The options in the first column of the tables under a '## heading' of docs/options.md."""
    out, on = set(), False
    for line in text.splitlines():
        if line.startswith("## "):
            on = line[3:].strip().lower().startswith(heading)
            continue
        if on and line.startswith("|"):
            first = line.strip("|").split("|")[0]
            out.update(re.findall(r"--[a-z0-9][a-z0-9-]*", first))
    return out


class OptionsDocumentedTest(unittest.TestCase):
    def test_help_and_docs_options_list_the_same_options(self):
        code, text, err = run_cli("--help")
        self.assertEqual(code, 0, err)
        with open(OPTIONS_FILE, encoding="utf-8") as f:
            doc = f.read()
        for section, heading in (("serve", "serve"), ("token", "token")):
            in_help = help_options(text, section)
            in_doc = documented_options(doc, heading)
            self.assertTrue(in_help, "no %s options found in --help" % section)
            self.assertEqual(sorted(in_help - in_doc), [],
                             "%s options in --help but not in docs/options.md" % section)
            self.assertEqual(sorted(in_doc - in_help), [],
                             "%s options in docs/options.md but not in --help" % section)


if __name__ == "__main__":
    unittest.main()
