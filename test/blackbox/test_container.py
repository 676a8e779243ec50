"""The container image and the systemd unit, checked without a container engine or systemd running:
the Dockerfile's stages, that every shared library the built binary links comes from a package the
runtime stage installs, a non-root user, the volume, port and health check, and that the image's
command line and the unit's ExecStart parse with the real binary; the unit's hardening options,
and `systemd-analyze verify` when it is there."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO_ROOT, BBTestCase, Server, binary, run_cli  # noqa: E402

DOCKERFILE = os.path.join(REPO_ROOT, "Dockerfile")
UNIT_FILE = os.path.join(REPO_ROOT, "packaging", "hendelse.service")
CI_DEPS = os.path.join(REPO_ROOT, ".ci", "deps")
# Packages every Debian image has (libc6 is pulled in by the essential set); the runtime stage
# need not install them.
# Priority "required" packages that debian:bookworm-slim already has.
BASE_PACKAGES = {"libc6", "libgcc-s1"}


# --------------------------------------------------------------------------------------------------
# Dockerfile parsing


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with comments dropped and continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def stages(instructions):
    """[{"from": image, "name": alias, "ins": [(INSTRUCTION, args)]}] in order."""
    res = []
    for ins, args in instructions:
        if ins == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            res.append({"from": parts[0], "name": name, "ins": []})
        elif res:
            res[-1]["ins"].append((ins, args))
    return res


def apt_packages(stage):
    """The packages the stage's RUN lines install with apt-get install."""
    pkgs = set()
    for ins, args in stage["ins"]:
        if ins != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", args):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                for w in words[words.index("install") + 1:]:
                    if not w.startswith("-") and "=" not in w:
                        pkgs.add(w)
    return pkgs


def exec_form(stage, ins_name):
    """The JSON exec form of the stage's last ins_name instruction (after options like --interval
    for HEALTHCHECK), or None."""
    found = None
    for ins, args in stage["ins"]:
        if ins == ins_name:
            found = args
    if found is None:
        return None
    if ins_name == "HEALTHCHECK":
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", found)
        return json.loads(m.group(1)) if m else None
    return json.loads(found)


def last_value(stage, ins_name):
    val = None
    for ins, args in stage["ins"]:
        if ins == ins_name:
            val = args
    return val


# --------------------------------------------------------------------------------------------------
# packages of shared libraries


def linked_libraries(path):
    out = subprocess.run(["ldd", path], check=True, capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line)
        if m:
            libs.append(m.group(2))
        else:
            m = re.match(r"\s*(/\S+)\s+\(", line)
            if m:
                libs.append(m.group(1))
    return libs


def package_of(path):
    """The Debian package that owns a library file (trying the usrmerge spellings), or None."""
    real = os.path.realpath(path)
    candidates = []
    for p in (path, real):
        candidates.append(p)
        if p.startswith("/lib"):
            candidates.append("/usr" + p)
        elif p.startswith("/usr/lib"):
            candidates.append(p[4:])
    for c in candidates:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            line = r.stdout.strip().splitlines()[0]
            return line.split(":", 1)[0].split(",")[0].strip()
    return None


def package_known(name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    if r.returncode == 0 and "installed" in r.stdout:
        return True
    if shutil.which("apt-cache"):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", name], capture_output=True,
                           text=True)
        return r.returncode == 0 and "Package:" in r.stdout
    return False


def help_text():
    code, out, err = run_cli("--help")
    assert code == 0, err
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------------


class DockerfileTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOCKERFILE, encoding="utf-8") as f:
            cls.stages = stages(dockerfile_instructions(f.read()))
        cls.build = cls.stages[0]
        cls.runtime = cls.stages[-1]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hendelse-ct-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def secret_file(self):
        path = os.path.join(self.tmp, "jwt-secret")
        with open(path, "w") as f:
            f.write("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
        return path

    def test_stages(self):
        self.assertGreaterEqual(len(self.stages), 2, "multi-stage")
        self.assertEqual(self.build["from"], "debian:bookworm")
        self.assertEqual(self.runtime["from"], "debian:bookworm-slim")
        copies = [a for i, a in self.runtime["ins"] if i == "COPY"]
        self.assertTrue(any(a.startswith("--from=" + (self.build["name"] or "0")) for a in copies),
                        "the runtime stage copies the binary from the build stage")

    def test_build_stage_installs_what_ci_installs(self):
        with open(CI_DEPS, encoding="utf-8") as f:
            m = re.search(r"pkgs=\(([^)]*)\)", f.read())
        ci = set(m.group(1).split())
        need = {p for p in ci if p.endswith("-dev")} | {"meson", "ninja-build", "pkg-config",
                                                        "python3"}
        self.assertEqual(sorted(need - apt_packages(self.build)), [])
        self.assertEqual(sorted(p for p in apt_packages(self.runtime) if p.endswith("-dev")), [],
                         "no -dev packages in the runtime image")

    def test_every_linked_library_comes_from_a_runtime_package(self):
        if not shutil.which("ldd") or not shutil.which("dpkg"):
            self.skipTest("ldd or dpkg missing")
        installed = apt_packages(self.runtime)
        libs = linked_libraries(binary())
        self.assertTrue(any("libevhtp" in lib for lib in libs), libs)
        # a sanitizer build links the sanitizer runtimes and what they need: not part of a release
        # image, so left out (the release build's libraries are all still checked)
        sanitizer = [lib for lib in libs if re.search(r"/lib(asan|ubsan|lsan|tsan)\.so", lib)]
        skip = set(sanitizer)
        for lib in sanitizer:
            skip |= set(linked_libraries(lib))
        for lib in libs:
            if lib in skip and package_of(lib) not in installed | BASE_PACKAGES:
                continue
            pkg = package_of(lib)
            self.assertIsNotNone(pkg, "no Debian package owns %s" % lib)
            self.assertIn(pkg, installed | BASE_PACKAGES,
                          "%s comes from %s, which the runtime stage does not install" % (lib, pkg))
        for pkg in installed:
            self.assertTrue(package_known(pkg), "no Debian package named %s" % pkg)

    def test_runtime_user_is_not_root(self):
        user = last_value(self.runtime, "USER")
        self.assertIsNotNone(user, "the runtime stage sets USER")
        name, _, group = user.partition(":")
        self.assertNotIn(name, ("root", "0"))
        self.assertNotIn(group, ("root", "0"))
        runs = " ".join(a for i, a in self.runtime["ins"] if i == "RUN")
        if name.isdigit():
            self.assertRegex(runs, r"useradd\b[^&]*--uid %s\b" % name, "the user is created")

    def test_volume_port_entrypoint(self):
        self.assertIn("/data", json.loads(last_value(self.runtime, "VOLUME")))
        self.assertEqual(last_value(self.runtime, "EXPOSE").split(), ["5080"])
        entry = exec_form(self.runtime, "ENTRYPOINT")
        cmd = exec_form(self.runtime, "CMD")
        self.assertEqual(entry, ["/usr/local/bin/hendelse"])
        self.assertEqual(cmd[0], "serve")
        self.assertIn("0.0.0.0:5080", cmd[cmd.index("--listen") + 1:][:1])
        self.assertIn("/data", cmd[cmd.index("--data") + 1:][:1])

    def test_command_line_parses(self):
        cmd = exec_form(self.runtime, "CMD")
        secret = self.secret_file()
        # the production profile does not start without a key, and says so in one line
        code, out, err = run_cli(*cmd, "--listen", "127.0.0.1:0", "--data",
                                 os.path.join(self.tmp, "d0"), timeout=15)
        self.assertEqual(code, 2, err)
        self.assertIn("jwt", err)
        if "--print-config" in help_text():
            env = dict(os.environ, HENDELSE_JWT_HS256_SECRET_FILE=secret)
            r = subprocess.run([binary()] + cmd + ["--print-config"], capture_output=True,
                               text=True, env=env, timeout=15)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("0.0.0.0:5080", r.stdout)
            self.assertIn("/data", r.stdout)
            self.assertIn("jwt-hs256-secret-file", r.stdout)
        # the real thing: the image's command with the key, on a free port and a temporary
        # directory (a later flag wins over the image's)
        argv = cmd + ["--listen", "127.0.0.1:0", "--data", os.path.join(self.tmp, "data"),
                      "--jwt-hs256-secret-file", secret]
        srv = Server(start=False)
        srv.argv = lambda: [binary()] + argv
        self.addCleanup(srv.cleanup)
        srv.start()
        r = srv.request("GET", "/health")
        self.assertEqual((r.status, r.body), (200, b"Healthy"))

    def test_healthcheck_probe(self):
        probe = exec_form(self.runtime, "HEALTHCHECK")
        self.assertIsNotNone(probe, "HEALTHCHECK CMD in exec form")
        self.assertTrue(any("/health" in p for p in probe), probe)
        self.assertTrue(shutil.which(probe[0]), "%s is in the slim image and here" % probe[0])
        srv = self.start_server("--auth", "none")

        def run(port):
            argv = [p.replace("5080", str(port)) for p in probe]
            return subprocess.run(argv, capture_output=True, timeout=10).returncode

        self.assertEqual(run(srv.port), 0, "healthy server")
        self.assertNotEqual(run(free_port()), 0, "nothing listening")
        # a server that answers something other than 200 is unhealthy too
        with socket.socket() as ls:
            ls.bind(("127.0.0.1", 0))
            ls.listen(1)
            port = ls.getsockname()[1]

            def answer():
                c, _ = ls.accept()
                with c:
                    c.recv(4096)
                    c.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 9\r\n\r\n"
                              b"Unhealthy")

            t = threading.Thread(target=answer)
            t.start()
            self.assertNotEqual(run(port), 0, "503 is unhealthy")
            t.join(5)


# --------------------------------------------------------------------------------------------------
# systemd


def unit_settings(text):
    """{section: {key: [values]}} of a unit file."""
    res, section = {}, None
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
            res.setdefault(section, {})
            continue
        k, _, v = s.partition("=")
        res[section].setdefault(k.strip(), []).append(v.strip())
    return res


class SystemdUnitTest(BBTestCase):
    @classmethod
    def setUpClass(cls):
        with open(UNIT_FILE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.unit = unit_settings(cls.text)

    def test_hardening(self):
        svc = self.unit["Service"]
        want = {
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes",
            "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
            "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
            "ProtectControlGroups": "yes", "SystemCallArchitectures": "native",
            "DynamicUser": "yes", "StateDirectory": "hendelse", "CapabilityBoundingSet": "",
        }
        for k, v in want.items():
            self.assertIn(k, svc, k)
            self.assertEqual(svc[k][-1], v, k)
        self.assertEqual(set(svc["RestrictAddressFamilies"][-1].split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        self.assertIn("@system-service", svc["SystemCallFilter"])
        self.assertNotIn("User", svc, "DynamicUser, no fixed user")
        self.assertEqual(self.unit["Install"]["WantedBy"], ["multi-user.target"])

    def exec_start(self, root):
        argv = shlex.split(self.unit["Service"]["ExecStart"][-1])
        subst = {"%E": os.path.join(root, "etc"), "%S": os.path.join(root, "state"),
                 "%d": os.path.join(root, "cred")}
        out = []
        for a in argv:
            for k, v in subst.items():
                a = a.replace(k, v)
            out.append(a)
        self.assertNotRegex(" ".join(out), r"%[a-zA-Z]", "a specifier this test does not know")
        return out

    def test_exec_start_parses(self):
        argv = self.exec_start("/x")
        self.assertEqual(argv[0], "/usr/local/bin/hendelse")
        self.assertEqual(argv[1], "serve")
        if "--config" in argv:
            code, _, err = run_cli("serve", "--config", "/nonexistent/config.json")
            if "not yet supported" in err:
                self.skipTest("this build has no --config")
        root = tempfile.mkdtemp(prefix="hendelse-unit-")
        self.addCleanup(shutil.rmtree, root, True)
        argv = self.exec_start(root)
        for d in ("etc/hendelse", "state/hendelse", "cred"):
            os.makedirs(os.path.join(root, d))
        with open(os.path.join(root, "cred", "jwt-secret"), "w") as f:
            f.write("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
        with open(os.path.join(root, "etc", "hendelse", "config.json"), "w") as f:
            json.dump({"listen": "127.0.0.1:0"}, f)
        srv = Server(*argv[2:], start=False)
        srv.argv = lambda: [binary()] + argv[1:]
        self.addCleanup(srv.cleanup)
        srv.start()
        r = srv.request("GET", "/health")
        self.assertEqual((r.status, r.body), (200, b"Healthy"))

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed")
        d = tempfile.mkdtemp(prefix="hendelse-unit-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "hendelse.service")
        with open(path, "w") as f:
            f.write(self.text.replace("/usr/local/bin/hendelse", binary()))
        r = subprocess.run([tool, "verify", path], capture_output=True, text=True, timeout=60)
        mine = [ln for ln in (r.stdout + r.stderr).splitlines() if "hendelse.service" in ln]
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(mine, [], "systemd-analyze verify complains")


if __name__ == "__main__":
    unittest.main()
