#!/usr/bin/env python3
"""deploy/Containerfile and its ignore file, checked without a container engine (none runs on
the project's machines and no registry is reachable, so the image is never built here):

* the recipe: every base image pinned to an exact release or a digest, the same base for
  both stages, a numeric non-root USER, the config and keystore paths as VOLUMEs, the
  build stage free of test tools, the final stage with runtime libraries only, and those
  libraries covering every shared library the kesc binary needs (dpkg -S);
* the ignore file: .containerignore and .dockerignore identical, and applied to this very
  checkout they drop keys, build directories and .git while keeping every file the build needs;
* the build stage's own commands, run on that filtered context with no test tool on PATH
  (mandoc, nginx, openssl, curl, clang, git hidden): they configure, compile and install;
* the entrypoint + default arguments pass `kesc server --check-config` with the config the
  run example uses, the run example sets every variable that config names, and the
  HEALTHCHECK command (kesc itself) reports healthy against such a server, and unhealthy
  when it cannot be answered.

Environment: KESC_BIN (the kesc binary), KESC_SOURCE_ROOT (the source tree).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

ROOT = dt.SOURCE_ROOT
CONTAINERFILE = os.path.join(ROOT, "deploy", "Containerfile")
PINNED = re.compile(r"^[\w.-]+(\.[\w.-]+)+/[\w./-]+(:[\w.-]*\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
TEST_TOOLS = {"mandoc", "nginx", "nginx-light", "openssl", "curl", "clang", "python3-yaml",
              "git", "valgrind", "strace", "gdb"}
BUILD_ONLY = re.compile(r"-dev$|^(gcc|g\+\+|clang|meson|ninja-build|pkg-config|make|cmake)$")


def read(path):
    with open(path) as f:
        return f.read()


def apt_packages(run_line):
    """The package names an `apt-get install` in a RUN line installs."""
    m = re.search(r"apt-get install ([^&;|]*)", run_line)
    if not m:
        return []
    return [w for w in m.group(1).split() if not w.startswith("-")]


class Recipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cf = dt.Containerfile(CONTAINERFILE)

    def test_base_images_are_pinned(self):
        bases = [stage[0].split()[0] for stage in self.cf.stages]
        self.assertGreaterEqual(len(bases), 2)
        for ref in bases:
            if ref == "build" or ref.startswith("build "):
                continue
            self.assertRegex(ref, PINNED, "FROM %s: not fully qualified and pinned" % ref)
            tag = ref.split("/")[-1]
            self.assertTrue("@sha256:" in ref or re.search(r":\d+\.\d+", tag),
                            "FROM %s: an exact release (12.11-slim) or a digest" % ref)
            self.assertNotIn(":latest", ref)
        # One base for both stages: the libraries built against are the ones shipped.
        self.assertEqual(len(set(bases)), 1, bases)

    def test_user_is_numeric_and_not_root(self):
        final = self.cf.final()
        users = [i for i, (ins, _) in enumerate(final) if ins == "USER"]
        self.assertTrue(users, "no USER in the final stage")
        user = final[users[-1]][1]
        self.assertRegex(user, r"^\d+(:\d+)?$")
        self.assertNotIn("0", user.split(":")[:1])
        # Nothing after USER that would need root, and the entrypoint runs as that user.
        self.assertNotIn("RUN", [ins for ins, _ in final[users[-1]:]])

    def test_volumes_exposure_entrypoint(self):
        vols = set()
        for v in [r for i, r in self.cf.final() if i == "VOLUME"]:
            vols.update(dt.json.loads(v) if v.startswith("[") else v.split())
        self.assertEqual(vols, {"/etc/kesc", "/var/lib/kesc"})
        self.assertEqual(self.cf.last("EXPOSE"), "7373")
        entry, cmd = self.cf.exec_form("ENTRYPOINT"), self.cf.exec_form("CMD")
        self.assertEqual(entry, ["/usr/local/bin/kesc", "server"])
        self.assertEqual(cmd, ["--config", "/etc/kesc/config.yml"])
        # The fs keystore path of the examples lies on the keystore volume.
        fs = dt.yaml_module().safe_load(read(os.path.join(ROOT, "deploy/examples/fs.yml")))
        self.assertTrue(fs["keystore"]["fs"]["path"].startswith("/var/lib/kesc/"))

    def test_build_stage_has_no_test_tools(self):
        build = self.cf.stages[0][1]
        pkgs = [p for i, r in build if i == "RUN" for p in apt_packages(r)]
        self.assertTrue(pkgs)
        self.assertEqual(set(pkgs) & TEST_TOOLS, set())
        setup = [r for i, r in build if i == "RUN" and "meson setup" in r]
        self.assertEqual(len(setup), 1)
        self.assertIn("-Dtests=false", setup[0])
        self.assertIn("--buildtype=release", setup[0])

    def test_final_stage_has_runtime_packages_only(self):
        pkgs = [p for i, r in self.cf.final() if i == "RUN" for p in apt_packages(r)]
        self.assertTrue(pkgs)
        for p in pkgs:
            self.assertNotRegex(p, BUILD_ONLY)
            self.assertNotIn(p, TEST_TOOLS)
        self.assertIn("--no-install-recommends", " ".join(r for i, r in self.cf.final()))
        # Every shared library kesc needs (linked, or dlopen'ed as libcurl is) comes from a
        # package the final stage installs. Sanitizer runtimes belong to the test build only.
        out = subprocess.run(["readelf", "-d", dt.KESC_BIN], capture_output=True, text=True,
                             check=True).stdout
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
        needed = {n for n in needed if not re.match(r"lib(a|ub|l|t)san", n)}
        needed |= {"libcurl.so.4"}
        system = {"libc.so.6", "ld-linux-x86-64.so.2", "libm.so.6", "libpthread.so.0",
                  "libdl.so.2", "ld-linux-aarch64.so.1"}
        for lib in sorted(needed - system):
            owner = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True, text=True)
            self.assertEqual(owner.returncode, 0, lib)
            names = {line.split(":")[0] for line in owner.stdout.splitlines()}
            self.assertTrue(names & set(pkgs), "%s comes from %s, not installed" % (lib, names))

    def test_copy_of_the_whole_context_is_filtered(self):
        copies = [r for stage in self.cf.stages for i, r in stage[1] if i == "COPY"]
        whole = [c for c in copies if c.split()[0] == "."]
        self.assertTrue(whole)  # it does copy the context, so the ignore file must hold
        for name in (".containerignore", ".dockerignore"):
            self.assertTrue(os.path.isfile(os.path.join(ROOT, name)), name)
        a = read(os.path.join(ROOT, ".containerignore"))
        b = read(os.path.join(ROOT, ".dockerignore"))
        self.assertEqual(a, b, ".containerignore and .dockerignore differ")


class IgnoreFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.patterns = dt.ignore_patterns(os.path.join(ROOT, ".containerignore"))

    def test_secrets_builds_and_git_are_left_out(self):
        for path in [".git", ".git/config", ".kesc-dev", ".kesc-dev/client.key",
                     ".kesc-dev/server.crt", "build", "build/cmd/kesc", "build-test/build.ninja",
                     "build-release/x.o", "builddir/a", "private.key", "deploy/server.key",
                     "tests/integration/admin.pem", "some/dir/x.crt", "kesc.env",
                     "core", "vgcore.123", "tests/fuzz/crash-abc"]:
            self.assertTrue(dt.ignored(path, self.patterns), path + " would be in the context")

    def test_what_the_build_needs_stays(self):
        tracked = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True,
                                 text=True)
        if tracked.returncode == 0 and tracked.stdout:
            files = tracked.stdout.split()
        else:  # not a git checkout (a release tarball): every file on disk
            files = [os.path.relpath(os.path.join(dp, n), ROOT)
                     for dp, _, ns in os.walk(ROOT) for n in ns]
        needed = [f for f in files if f.split("/")[0] in
                  ("keystore", "policy", "server", "cmd", "man", "deploy")
                  or f in ("meson.build", "meson_options.txt", "kesc_commit.h.in", "LICENSE")]
        self.assertGreater(len(needed), 50)
        dropped = [f for f in needed if dt.ignored(f, self.patterns)]
        self.assertEqual(dropped, [])


def filtered_context(dest):
    """Copies the checkout as a container engine would send it (ignore file applied)."""
    patterns = dt.ignore_patterns(os.path.join(ROOT, ".containerignore"))
    for dirpath, dirnames, names in os.walk(ROOT):
        rel = os.path.relpath(dirpath, ROOT)
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not dt.ignored(rel + d, patterns)]
        for n in names:
            if dt.ignored(rel + n, patterns):
                continue
            os.makedirs(os.path.join(dest, rel), exist_ok=True)
            shutil.copy2(os.path.join(dirpath, n), os.path.join(dest, rel, n), follow_symlinks=False)


def path_without(tools, directory):
    """A PATH directory with every program of the system's PATH except tools."""
    os.makedirs(directory)
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            if n in tools or n.startswith("clang") or os.path.exists(os.path.join(directory, n)):
                continue
            os.symlink(os.path.join(d, n), os.path.join(directory, n))
    return directory


class BuildStage(unittest.TestCase):
    def test_build_stage_commands_on_the_filtered_context(self):
        cf = dt.Containerfile(CONTAINERFILE)
        build = cf.stages[0][1]
        workdir = cf.last("WORKDIR", build)
        (run,) = [r for i, r in build if i == "RUN" and "meson setup" in r]
        tmp = tempfile.mkdtemp(prefix="deploy-image-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src, bld, out = (os.path.join(tmp, d) for d in ("src", "build", "out"))
        filtered_context(src)
        self.assertFalse(os.path.exists(os.path.join(src, ".git")))
        cmd = run.replace(workdir, src).replace("/build", bld).replace("/out", out)
        self.assertIsNone(re.search(r"(^|\s)/(build|out|src)\b", cmd), cmd)
        hidden = {"mandoc", "nginx", "openssl", "curl", "git", "python3-config"}
        env = dt.clean_env({"PATH": path_without(hidden, os.path.join(tmp, "bin"))})
        for k in ("CC", "CFLAGS", "LDFLAGS", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
            env.pop(k, None)
        r = subprocess.run(["nice", "bash", "-ec", cmd], cwd=src, env=env, capture_output=True,
                           text=True, timeout=1500)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        # What the final stage copies out of the build stage exists.
        for i, rest in cf.final():
            if i == "COPY" and rest.startswith("--from=build"):
                srcpath = rest.split()[1]
                self.assertTrue(os.path.exists(out + srcpath[len("/out"):]), srcpath)
        kesc = os.path.join(out, "usr/local/bin/kesc")
        v = subprocess.run([kesc, "--version"], capture_output=True, text=True)
        # kes -v's layout: "Version    <version>  commit=<revision>" first.
        self.assertRegex(v.stdout, r"^Version    %s +commit=" % re.escape(dt.project_version()))
        self.assertTrue(os.path.exists(os.path.join(out, "usr/local/share/man/man7/kesc-deploy.7")))


class RunExample(unittest.TestCase):
    """The `docker run` example in the Containerfile's header, without docker: the same argv,
    the same variables, the same config, the volumes as directories."""

    @classmethod
    def setUpClass(cls):
        cls.cf = dt.Containerfile(CONTAINERFILE)
        text = read(CONTAINERFILE)
        block = re.search(r"#   docker run .*?kesc:[\w.]+\n", text, re.S).group(0)
        cls.run_cmd = " ".join(l.lstrip("#").strip().rstrip("\\") for l in block.splitlines())
        cls.example = re.search(r"here for (deploy/examples/[\w.-]+\.yml)", text).group(1)

    def run_example(self):
        words = shlex.split(self.run_cmd.replace("$(", "`").replace(")\"", "`\""))
        env, vols, ports = [], {}, []
        for i, w in enumerate(words):
            if w == "-e":
                env.append(words[i + 1].split("=", 1)[0])
            elif w == "-v":
                host, target = words[i + 1].split(":")[:2]
                vols[target] = host
            elif w == "-p":
                ports.append(words[i + 1])
        return env, vols, ports

    def test_run_example_sets_every_variable_and_volume(self):
        env, vols, ports = self.run_example()
        cfg = read(os.path.join(ROOT, self.example))
        self.assertEqual(dt.config_variables(cfg) - set(env), set())
        self.assertEqual(set(vols), {"/etc/kesc", "/var/lib/kesc"})
        self.assertIn("7373:7373", ports)

    def test_entrypoint_config_and_healthcheck(self):
        tmp = tempfile.mkdtemp(prefix="deploy-run-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "root")
        etc, keys = root + "/etc/kesc", root + "/var/lib/kesc"
        os.makedirs(etc)
        os.makedirs(keys)
        certs = dt.kesctest.Certs(etc)
        certs.server("server")
        for name in ("admin", "minio"):
            certs.client(name)
        cfg = read(os.path.join(ROOT, self.example))
        cfg = cfg.replace("/etc/kesc/", etc + "/").replace("/var/lib/kesc/", keys + "/")
        with open(os.path.join(etc, "config.yml"), "w") as f:
            f.write(cfg)
        env = dt.clean_env({"KESC_ADMIN_IDENTITY": certs.identity("admin"),
                            "MINIO_IDENTITY": certs.identity("minio")})
        argv = self.cf.exec_form("ENTRYPOINT") + self.cf.exec_form("CMD")
        argv = [dt.KESC_BIN] + [a.replace("/etc/kesc/", etc + "/") for a in argv[1:]]
        r = subprocess.run(argv + ["--check-config"], env=env, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

        opts, check = self.cf.healthcheck()
        self.assertEqual(check[0], "/usr/local/bin/kesc")
        self.assertEqual(check[1:3], ["status", "--ready"])
        for k in ("interval", "timeout", "retries"):
            self.assertIn(k, opts)
        # The health check talks to 127.0.0.1:7373; the test server listens on a free port.
        with dt.Process(argv + ["--addr", "127.0.0.1:0"], env) as srv:
            hc = [dt.KESC_BIN] + [a.replace("127.0.0.1:7373", "127.0.0.1:%d" % srv.port)
                                  for a in check[1:]]
            ok = subprocess.run(hc, env=dt.clean_env(), capture_output=True, text=True,
                                timeout=60)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertEqual(ok.stdout.strip(), "https://127.0.0.1:%d ready" % srv.port)
            self.assertIn("Memory:", srv.stderr())
        # Nobody answering: unhealthy, with the reason.
        bad = subprocess.run(hc, env=dt.clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("is not ready", bad.stderr)

    def test_ready_check_needs_skip_auth_and_a_reachable_keystore(self):
        check = self.cf.healthcheck()[1][1:]
        with dt.kesctest.Server() as srv:  # no skip_auth: a certificate-less client is refused
            hc = [dt.KESC_BIN] + [a.replace("127.0.0.1:7373", srv.addr) for a in check]
            r = subprocess.run(hc, env=dt.clean_env(), capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("is not ready", r.stderr)
        # The keystore directory gone (unreadable): the server is up but not ready.
        with dt.kesctest.Server(config={"api": {"/v1/ready": {"skip_auth": True}}}) as srv:
            hc = [dt.KESC_BIN] + [a.replace("127.0.0.1:7373", srv.addr) for a in check]
            ok = subprocess.run(hc, env=dt.clean_env(), capture_output=True, text=True,
                                timeout=60)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            shutil.rmtree(os.path.join(srv.dir, "keys"))
            r = subprocess.run(hc, env=dt.clean_env(), capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("is not ready", r.stderr)
        usage = subprocess.run([dt.KESC_BIN, "status", "--ready", "--json"],
                               env=dt.clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(usage.returncode, 1)  # a usage error exits 1, as kes


if __name__ == "__main__":
    unittest.main(verbosity=2)
