#!/usr/bin/env python3
"""`meson install` for systemd, checked on the installed files (into a DESTDIR):

* it installs the binary, the three man pages, kesc.service, the sysusers.d entry for the kesc
  user, the tmpfiles.d entry and the example configuration under the sysconfdir, and the
  unit names the installed binary and the installed configuration directory;
* `systemd-analyze verify` accepts the unit (with the DESTDIR as the root, holding the
  system's own units and /bin/kill as a target machine would, and the installed man pages for
  Documentation=), and `systemd-analyze security --offline=true --threshold=20` rates it at
  most 2.0 ("OK");
* systemd-sysusers creates the kesc user from the entry; systemd-tmpfiles creates the
  directories with the owners and modes the unit expects;
* the installed example configuration passes `kesc server --check-config` once its
  certificates and variables exist;
* a Vault that is down at boot does not leave the service dead: kesc exits with status 1 at
  once (so Restart=on-failure applies; the unit has no start limit), sends no READY=1, and
  the same command started again once Vault is up (what RestartSec does) sends READY=1.

Environment: KESC_BIN, KESC_SOURCE_ROOT, MESON (the meson program), KESC_BUILD_ROOT.
"""
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

MESON = os.environ.get("MESON", "meson")
BUILD_ROOT = os.environ.get("KESC_BUILD_ROOT", "")
DESTDIR = None


def setUpModule():
    global DESTDIR
    DESTDIR = tempfile.mkdtemp(prefix="deploy-destdir-")
    r = subprocess.run([MESON, "install", "-C", BUILD_ROOT, "--destdir", DESTDIR,
                        "--no-rebuild", "--quiet"], capture_output=True, text=True,
                       env=dt.clean_env({"DESTDIR": DESTDIR}), timeout=600)
    if r.returncode != 0:
        raise RuntimeError("meson install failed:\n" + r.stdout + r.stderr)


def tearDownModule():
    if DESTDIR:
        shutil.rmtree(DESTDIR, ignore_errors=True)


def installed(pattern):
    found = glob.glob(os.path.join(DESTDIR, pattern.lstrip("/")), recursive=True)
    return [f for f in found if not os.path.isdir(f)]


def one(pattern):
    found = installed(pattern)
    if len(found) != 1:
        raise AssertionError("%s: expected one installed file, found %r" % (pattern, found))
    return found[0]


def unit_settings(path):
    """[(section, key, value)] of a unit file (keys may repeat, as systemd allows)."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.append((section, k.strip(), v.strip()))
    return out


def setting(settings, section, key):
    values = [v for s, k, v in settings if s == section and k == key]
    return values[-1] if values else None


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|min)?", value)
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "min": n * 60}[m.group(2)]


class Installed(unittest.TestCase):
    def test_files(self):
        kesc = one("**/bin/kesc")
        self.assertTrue(os.access(kesc, os.X_OK))
        for page in ("man1/kesc.1", "man5/kesc.yml.5", "man7/kesc-deploy.7"):
            one("**/man/" + page)
        unit = one("**/lib/systemd/system/kesc.service")
        one("**/lib/sysusers.d/kesc.conf")
        one("**/lib/tmpfiles.d/kesc.conf")
        example = one("**/kesc/config.yml.example")
        one("**/kesc/kesc.env.example")
        s = unit_settings(unit)
        exec_start = setting(s, "Service", "ExecStart").split()
        self.assertEqual(DESTDIR + exec_start[0], kesc)
        config = exec_start[exec_start.index("--config") + 1]
        self.assertEqual(os.path.dirname(DESTDIR + config), os.path.dirname(example))
        self.assertEqual(setting(s, "Service", "EnvironmentFile"),
                         "-" + os.path.dirname(config) + "/kesc.env")

    def test_unit_settings(self):
        s = unit_settings(one("**/lib/systemd/system/kesc.service"))
        svc = lambda k: setting(s, "Service", k)  # noqa: E731
        self.assertEqual(svc("Type"), "notify")
        self.assertEqual(svc("NotifyAccess"), "main")
        self.assertEqual((svc("User"), svc("Group")), ("kesc", "kesc"))
        self.assertEqual(svc("LimitCORE"), "0")
        self.assertEqual(svc("UMask"), "0077")
        self.assertEqual(svc("CapabilityBoundingSet"), "CAP_IPC_LOCK")
        self.assertEqual(svc("StateDirectory"), "kesc")
        self.assertEqual(svc("LogsDirectory"), "kesc")
        for k in ("NoNewPrivileges", "PrivateDevices", "MemoryDenyWriteExecute",
                  "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                  "ProtectControlGroups", "RestrictNamespaces", "LockPersonality"):
            self.assertEqual(svc(k), "yes", k)
        self.assertEqual(svc("ProtectSystem"), "strict")
        self.assertEqual(svc("RestrictAddressFamilies"), "AF_UNIX AF_INET AF_INET6")
        self.assertEqual([v for sec, k, v in s if k == "SystemCallFilter"],
                         ["@system-service", "~@privileged @resources"])
        # Never dead after a boot-time Vault outage: restart on failure, no start limit.
        self.assertEqual(svc("Restart"), "on-failure")
        self.assertGreater(seconds(svc("RestartSec")), 0)
        self.assertEqual(setting(s, "Unit", "StartLimitIntervalSec"), "0")
        # The stop timeout covers kesc's drain (10 s).
        self.assertGreater(seconds(svc("TimeoutStopSec")), 10)


class SystemdAnalyze(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.unit = one("**/lib/systemd/system/kesc.service")
        cls.root = tempfile.mkdtemp(prefix="deploy-root-")
        # The target machine: the installed files, plus the system's own units and /bin/kill.
        shutil.copytree(DESTDIR, cls.root, dirs_exist_ok=True, symlinks=True)
        units = os.path.realpath("/lib/systemd/system")
        shutil.copytree(units, cls.root + units, dirs_exist_ok=True, symlinks=True)
        os.makedirs(cls.root + "/bin", exist_ok=True)
        shutil.copy2(os.path.realpath("/bin/kill"), cls.root + "/bin/kill")
        cls.mandir = os.path.dirname(os.path.dirname(one("**/man/man1/kesc.1")))
        cls.mandir = cls.root + cls.mandir[len(DESTDIR):]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_verify(self):
        r = subprocess.run(["systemd-analyze", "verify", "--root=" + self.root, self.unit],
                           capture_output=True, text=True, timeout=120,
                           env=dt.clean_env({"MANPATH": self.mandir}))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def test_security_exposure_at_most_2(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                            "--root=" + self.root, self.unit],
                           capture_output=True, text=True, timeout=120, env=dt.clean_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"Overall exposure level for kesc\.service: (\d+\.\d+) (\w+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
        self.assertEqual(m.group(2), "OK")
        print("systemd-analyze security: %s %s" % (m.group(1), m.group(2)))

    def test_sysusers_and_tmpfiles(self):
        root = tempfile.mkdtemp(prefix="deploy-users-")
        self.addCleanup(shutil.rmtree, root, True)
        os.makedirs(root + "/etc")
        users = one("**/lib/sysusers.d/kesc.conf")
        r = subprocess.run(["systemd-sysusers", "--root=" + root, users], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(root + "/etc/passwd") as f:
            entry = [l.split(":") for l in f.read().splitlines() if l.startswith("kesc:")]
        self.assertEqual(len(entry), 1)
        name, _, uid, gid, _, home, shell = entry[0]
        self.assertLess(int(uid), 1000)  # a system user
        self.assertEqual(home, "/var/lib/kesc")
        self.assertIn("nologin", shell)
        tmpfiles = one("**/lib/tmpfiles.d/kesc.conf")
        with open(tmpfiles) as f:
            lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
        paths = {l[1]: l for l in lines}
        sysconf = os.path.dirname(one("**/kesc/config.yml.example"))[len(DESTDIR):]
        self.assertEqual(paths[sysconf][:5], ["d", sysconf, "0750", "root", "kesc"])
        self.assertEqual(paths["/var/lib/kesc"][:5], ["d", "/var/lib/kesc", "0700", "kesc", "kesc"])
        self.assertEqual(paths["/var/log/kesc"][:5], ["d", "/var/log/kesc", "0750", "kesc", "kesc"])
        if os.geteuid() != 0:
            print("not root: systemd-tmpfiles --create (which chowns) not run")
            return
        r = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create", tmpfiles],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for path, mode, owner_uid, owner_gid in ((sysconf, 0o750, 0, int(gid)),
                                                 ("/var/lib/kesc", 0o700, int(uid), int(gid)),
                                                 ("/var/log/kesc", 0o750, int(uid), int(gid))):
            st = os.stat(root + path)
            self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid),
                             (mode, owner_uid, owner_gid), path)


class ExampleConfig(unittest.TestCase):
    def test_installed_example_checks(self):
        example = one("**/kesc/config.yml.example")
        sysconf = os.path.dirname(example)[len(DESTDIR):]
        tmp = tempfile.mkdtemp(prefix="deploy-example-")
        self.addCleanup(shutil.rmtree, tmp, True)
        certs = dt.kesctest.Certs(tmp)
        certs.server("server")
        certs.client("admin")
        with open(example) as f:
            text = f.read()
        self.assertIn(sysconf + "/server.key", text)
        text = text.replace(sysconf + "/server.key", certs.key("server"))
        text = text.replace(sysconf + "/server.crt", certs.cert("server"))
        text = text.replace("/var/lib/kesc/", tmp + "/state/")
        cfg = os.path.join(tmp, "config.yml")
        with open(cfg, "w") as f:
            f.write(text)
        env = dt.clean_env({"KESC_ADMIN_IDENTITY": certs.identity("admin")})
        self.assertEqual(dt.config_variables(text), {"KESC_ADMIN_IDENTITY"})
        # kesc.env.example names every variable the example config uses.
        with open(one("**/kesc/kesc.env.example")) as f:
            self.assertIn("#KESC_ADMIN_IDENTITY=", f.read())
        r = subprocess.run([dt.KESC_BIN, "server", "--check-config", "--config", cfg], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)


class VaultDownAtBoot(unittest.TestCase):
    ROLE_ID, SECRET_ID = "kesc-boot-role-id", "kesc-boot-secret-id-0123456789"

    def test_exit_then_start_once_vault_is_up(self):
        tmp = tempfile.mkdtemp(prefix="deploy-boot-")
        self.addCleanup(shutil.rmtree, tmp, True)
        certs = dt.kesctest.Certs(tmp)
        certs.server("server")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now: Vault is "down"
        cfg = os.path.join(tmp, "config.yml")
        with open(cfg, "w") as f:
            f.write("""version: v1
address: 127.0.0.1:0
admin: {identity: disabled}
tls: {key: %s, cert: %s}
keystore:
  vault:
    endpoint: http://127.0.0.1:%d
    engine: kv
    version: v2
    approle: {id: %s, secret: %s}
""" % (certs.key("server"), certs.cert("server"), port, self.ROLE_ID, self.SECRET_ID))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        name = "kesc-boot-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        notify.bind("\0" + name)
        env = dt.clean_env({"NOTIFY_SOCKET": "@" + name})
        argv = [dt.KESC_BIN, "server", "--config", cfg]

        t0 = time.monotonic()
        first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        self.assertEqual(first.returncode, 1, first.stderr)  # Restart=on-failure applies
        self.assertIn("vault", first.stderr)
        notify.settimeout(0)
        with self.assertRaises(BlockingIOError):
            notify.recv(4096)  # no READY=1: systemd counts the start as failed
        print("kesc exited %.2f s after start with Vault down: %s" %
              (took, first.stderr.strip().splitlines()[-1]))

        # Vault comes up on that address; the next start (RestartSec later) succeeds.
        ready = os.path.join(tmp, "vault-ready")
        vault = subprocess.Popen([sys.executable, dt.VAULT_SERVER, "--listen",
                                  "127.0.0.1:%d" % port, "--ready-file", ready],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (vault.kill(), vault.wait()))
        deadline = time.monotonic() + dt.START_WAIT
        while not os.path.exists(ready):
            self.assertLess(time.monotonic(), deadline, "Vault test server did not start")
            time.sleep(0.02)
        with open(ready) as f:
            url, root = f.read().split("\n")[:2]
        call = lambda m, p, b=None: vault_http(url, root, m, p, b)  # noqa: E731
        call("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        call("PUT", "/v1/sys/policies/acl/kesc", {"policy": 'path "kv/*" { capabilities = ["create", "read", "list", "delete"] }'})
        call("POST", "/v1/sys/auth/approle", {"type": "approle"})
        call("POST", "/v1/auth/approle/role/kesc", {"token_policies": ["kesc"]})
        call("POST", "/v1/auth/approle/role/kesc/role-id", {"role_id": self.ROLE_ID})
        call("POST", "/v1/auth/approle/role/kesc/custom-secret-id", {"secret_id": self.SECRET_ID})

        with dt.Process(argv, env) as srv:
            notify.settimeout(dt.START_WAIT)
            msg = notify.recv(4096).decode()
            self.assertTrue(msg.startswith("READY=1"), msg)
            self.assertIn("Keystore: Hashicorp Vault", srv.stderr())


def vault_http(url, token, method, path, body=None):
    import http.client
    import json
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"X-Vault-Token": token})
        r = conn.getresponse()
        raw = r.read()
        if r.status not in (200, 204):
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, raw[:300]))
    finally:
        conn.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
