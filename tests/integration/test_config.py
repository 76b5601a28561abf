"""Configuration fails closed, through the real `kesc server` binary:

* an unknown or misspelled field is an error at start-up, in --check-config and on SIGHUP,
  where the running configuration (TLS verification, policies) stays in force;
* `tls.auth: on` without `tls.ca` verifies against the system trust store (SSL_CERT_FILE /
  SSL_CERT_DIR, as Go finds it) and the banner says so;
* `--check-config` creates nothing (the directory tree is compared before and after) and still
  reports what starting would fail on: missing or unwritable directories and files (checked as
  an unprivileged user via setpriv), an address in use, an expired or mismatched certificate,
  a private key others can read; for Vault it logs in and reads, and writes nothing.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VAULT_SERVER = os.path.join(HERE, "..", "vault", "vault_server.py")
NOBODY = 65534


def tree(root):
    """Every path below root with its type, mode, size and mtime: any change shows."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def check_config(path, *extra, env=None, user=None):
    """kesc server --check-config; user=NOBODY runs it without privileges (setpriv)."""
    args = [kesctest.KESC_BIN, "server", "--check-config", "--config", path, *extra]
    if user is not None:
        args = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups",
                *args]
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(args, capture_output=True, env=e, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def start_fails(srv):
    """Starts srv expecting a start-up error; returns its stderr."""
    r = kesctest.run_kesc("server", "--config", srv.config_path, "--addr", "127.0.0.1:0",
                          env=srv.env)
    if r.returncode == 0:
        raise AssertionError("kesc server started")
    return r.stderr.decode()


def expired_certificate(directory):
    """A server certificate (SAN localhost) that expired in 2020, with its key."""
    cnf = os.path.join(directory, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n"
                "[p]\ncommonName = supplied\n" % (directory, directory, directory))
    open(os.path.join(directory, "index.txt"), "w").close()
    with open(os.path.join(directory, "serial"), "w") as f:
        f.write("01\n")
    key = os.path.join(directory, "expired.key")
    csr = os.path.join(directory, "expired.csr")
    crt = os.path.join(directory, "expired.crt")
    kesctest._openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key)
    kesctest._openssl("req", "-new", "-key", key, "-subj", "/CN=localhost", "-addext",
                      "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", csr)
    kesctest._openssl("ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", key, "-in", csr,
                      "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-out",
                      crt, "-notext")
    return crt, key


class UnknownFieldsTest(unittest.TestCase):
    def test_typo_refuses_start_and_check(self):
        srv = kesctest.Server(start=False, config={"tls": {"ca": "x", "atuh": "on"},
                                                   "policy": {"p": {"alow": ["/v1/status"]}},
                                                   "api": {"/v1/status": {"skipauth": True}}})
        try:
            err = start_fails(srv)
            self.assertIn("unknown field 'tls.atuh' (did you mean 'auth'?)", err)
            self.assertIn("unknown field 'policy.p.alow' (did you mean 'allow'?)", err)
            self.assertIn("unknown field 'api./v1/status.skipauth' (did you mean "
                          "'skip_auth'?)", err)
            rc, out, err = check_config(srv.config_path)
            self.assertEqual(rc, 1, err)
            self.assertNotIn("OK", out)
            self.assertIn("Error: %s:" % srv.config_path, err)
            self.assertIn("unknown field 'tls.atuh'", err)
        finally:
            srv.cleanup()

    def test_other_kes_keystores_are_refused_by_name(self):
        for section in ({"aws": {"secretsmanager": {"region": "us-east-1"}}},
                        {"gcp": {"secretmanager": {"project_id": "p"}}},
                        {"azure": {"keyvault": {"endpoint": "https://a.vault.azure.net"}}},
                        {"fortanix": {"sdkms": {"endpoint": "https://sdkms.fortanix.com"}}},
                        {"gemalto": {"keysecure": {"endpoint": "https://127.0.0.1"}}},
                        {"entrust": {"keycontrol": {"endpoint": "https://kc"}}}):
            name = next(iter(section))
            srv = kesctest.Server(start=False, keystore=section)
            try:
                err = start_fails(srv)
                self.assertIn("keystore.%s: not supported by kesc (supported: fs, vault)"
                              % name, err)
                rc, _, err = check_config(srv.config_path)
                self.assertEqual(rc, 1)
                self.assertIn("keystore.%s: not supported by kesc" % name, err)
            finally:
                srv.cleanup()

    def test_reload_with_a_typo_keeps_the_running_configuration(self):
        srv = kesctest.Server(start=False,
                              policies={"p": {"allow": ["/v1/status"], "identities": ["limited"]}})
        try:
            srv.certs.client_signed("trusted", ca="ca")
            srv.certs.ca("other-ca")
            srv.certs.client_signed("untrusted", ca="other-ca")
            srv.admin = "trusted"
            srv.policies = {"p": {"allow": ["/v1/status"], "identities": ["untrusted"]}}
            srv.extra = {"tls": {"auth": "on", "ca": srv.certs.cert("ca")}}
            srv.write_config()
            srv.start()
            self.assertEqual(srv.request("GET", "/v1/status", cert="trusted").status, 200)
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                srv.request("GET", "/v1/status", cert="untrusted")

            # The typo would turn verification off and widen the policy: refused whole.
            srv.extra = {"tls": {"atuh": "on", "ca": srv.certs.cert("ca")}}
            srv.policies = {"p": {"allow": ["/v1/status"], "alow": ["/v1/key/*"],
                                  "identities": ["trusted"]}}
            self.assertFalse(srv.reload())
            log = srv.stderr_text()
            self.assertIn("reload failed, keeping the running configuration", log)
            self.assertIn("unknown field 'tls.atuh' (did you mean 'auth'?)", log)
            self.assertIn("unknown field 'policy.p.alow' (did you mean 'allow'?)", log)
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                srv.request("GET", "/v1/status", cert="untrusted")
            self.assertEqual(srv.request("GET", "/v1/key/list/*", cert="trusted").status, 200)

            # The same change spelled right is applied.
            srv.extra = {"tls": {"auth": "off", "ca": None}}
            srv.policies = {"p": {"allow": ["/v1/status"], "identities": ["untrusted"]}}
            self.assertTrue(srv.reload())
            self.assertEqual(srv.request("GET", "/v1/status", cert="untrusted").status, 200)
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()

    def test_reload_refused_for_its_log_file_creates_no_key(self):
        with kesctest.Server() as srv:
            bad = os.path.join(srv.dir, "no-such-dir", "audit.log")
            self.assertFalse(srv.reload({"log": {"audit": bad}, "keys": [{"name": "preset"}]}))
            self.assertIn("reload failed, keeping the running configuration: log.audit '%s': "
                          "directory '%s': No such file or directory"
                          % (bad, os.path.dirname(bad)), srv.stderr_text())
            r = srv.request("GET", "/v1/key/list/*")
            self.assertEqual(r.json(), {"names": []}, r)
            self.assertFalse(os.path.exists(os.path.join(srv.dir, "no-such-dir")))
            self.assert_audit_still_on_stdout(srv)

    def assert_audit_still_on_stdout(self, srv):
        before = len(srv.audit_lines())
        self.assertEqual(srv.request("GET", "/v1/status").status, 200)
        deadline = time.monotonic() + 10
        while len(srv.audit_lines()) == before and time.monotonic() < deadline:
            time.sleep(0.1)  # the audit sink is flushed once a second
        self.assertGreater(len(srv.audit_lines()), before)

    def test_unserved_api_route_is_a_warning(self):
        with kesctest.Server(config={"api": {"/v1/status/": {"timeout": "5s"}}}) as srv:
            self.assertIn("api./v1/status/: kesc serves no such route, the entry is ignored "
                          "(as KES does); did you mean '/v1/status'?", srv.stderr_text())
            rc, out, err = check_config(srv.config_path, "--addr", "127.0.0.1:0")
            self.assertEqual((rc, out.strip()), (0, "OK"), err)
            self.assertIn("Warning: %s:" % srv.config_path, err)


class TrustStoreTest(unittest.TestCase):
    def make(self):
        srv = kesctest.Server(start=False)
        srv.certs.client_signed("trusted", ca="ca")
        srv.certs.ca("other-ca")
        srv.certs.client_signed("untrusted", ca="other-ca")
        srv.admin = "trusted"
        srv.extra = {"tls": {"auth": "on"}}
        srv.write_config()
        self.empty = os.path.join(srv.dir, "empty-dir")
        os.mkdir(self.empty)
        return srv

    def verify_store(self, srv, where):
        srv.start()
        self.assertIn("verified against the system trust store (%s: 1 CAs)" % where,
                      srv.stderr_text())
        self.assertEqual(srv.request("GET", "/v1/key/list/*", cert="trusted").status, 200)
        for cert in ("untrusted", "admin"):
            with self.assertRaises((ssl.SSLError, ConnectionError), msg=cert):
                srv.request("GET", "/version", cert=cert)
        self.assertEqual(srv.stop(), 0)

    def test_ssl_cert_file(self):
        srv = self.make()
        try:
            srv.env = {"SSL_CERT_FILE": srv.certs.cert("ca"), "SSL_CERT_DIR": self.empty}
            self.verify_store(srv, srv.certs.cert("ca"))
        finally:
            srv.cleanup()

    def test_ssl_cert_dir(self):
        srv = self.make()
        try:
            cas = os.path.join(srv.dir, "cas")
            os.mkdir(cas)
            shutil.copy(srv.certs.cert("ca"), os.path.join(cas, "ca.pem"))
            os.symlink("ca.pem", os.path.join(cas, "0123abcd.0"))  # a hash link: read once
            with open(os.path.join(cas, "README"), "w") as f:
                f.write("not a certificate\n")
            srv.env = {"SSL_CERT_FILE": os.path.join(srv.dir, "none.pem"),
                       "SSL_CERT_DIR": "%s:%s" % (self.empty, cas)}
            self.verify_store(srv, cas)
        finally:
            srv.cleanup()

    def test_empty_store_refuses_to_start(self):
        srv = self.make()
        try:
            srv.env = {"SSL_CERT_FILE": os.path.join(srv.dir, "none.pem"),
                       "SSL_CERT_DIR": self.empty}
            err = start_fails(srv)
            self.assertIn("tls.auth is on without tls.ca, and the system trust store has no "
                          "certificate", err)
            rc, _, err = check_config(srv.config_path, env=srv.env)
            self.assertEqual(rc, 1)
            self.assertIn("system trust store has no certificate", err)
        finally:
            srv.cleanup()

    def test_ca_without_auth_is_a_warning(self):
        srv = kesctest.Server(start=False)
        try:
            srv.certs.ca("ca")
            srv.extra = {"tls": {"ca": srv.certs.cert("ca")}}
            srv.write_config()
            srv.start()
            self.assertIn("tls.ca is set but tls.auth is off", srv.stderr_text())
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)
        finally:
            srv.cleanup()


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.srv = kesctest.Server(start=False)
        self.dir = self.srv.dir
        os.chmod(self.dir, 0o755)  # setpriv'ed runs must reach the config and certificates

    def tearDown(self):
        self.srv.cleanup()

    def write(self, **extra):
        self.srv.extra = extra
        self.srv.write_config()
        os.chmod(self.srv.config_path, 0o644)
        return self.srv.config_path

    def test_creates_nothing(self):
        path = self.write(keys=[{"name": "k1"}, {"name": "k2"}],
                          log={"audit": os.path.join(self.dir, "logs", "audit.log"),
                               "error": os.path.join(self.dir, "error.log")},
                          keystore={"fs": {"path": os.path.join(self.dir, "a", "b", "keys")}})
        os.mkdir(os.path.join(self.dir, "logs"))
        before = tree(self.dir)
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        self.assertEqual(tree(self.dir), before)
        self.assertIn("Warning: keystore.fs.path '%s/a/b/keys' does not exist; starting "
                      "creates it and 2 missing parent directories below '%s'"
                      % (self.dir, self.dir), err)
        self.assertIn("Note: log.audit '%s/logs/audit.log' does not exist; starting creates it"
                      % self.dir, err)
        # Starting does create them.
        self.srv.start()
        self.assertEqual(self.srv.stop(), 0)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "a", "b", "keys")))
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "logs", "audit.log")))

    def test_missing_directories(self):
        path = self.write(log={"audit": os.path.join(self.dir, "nope", "audit.log")})
        before = tree(self.dir)
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("Error: log.audit '%s/nope/audit.log': directory '%s/nope': No such "
                      "file or directory" % (self.dir, self.dir), err)
        self.assertEqual(tree(self.dir), before)

    def test_unwritable_paths_as_the_user_it_runs_as(self):
        locked = os.path.join(self.dir, "locked")
        os.mkdir(locked, 0o700)  # root's; nobody may not write there
        keys = os.path.join(self.dir, "keys")
        os.mkdir(keys, 0o700)
        for name in ("server.key", "server.crt"):
            os.chmod(os.path.join(self.dir, name), 0o644)
        path = self.write(log={"error": os.path.join(locked, "error.log")},
                          keystore={"fs": {"path": keys}})
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0", user=NOBODY)
        self.assertEqual(rc, 1, err)
        self.assertIn("Error: log.error '%s/error.log': Permission denied" % locked, err)
        self.assertIn("Error: keystore.fs.path '%s': Permission denied" % keys, err)
        # The same config is fine for root, who owns both.
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)

    def test_unreadable_and_missing_tls_files_in_words(self):
        os.chmod(self.srv.certs.key("server"), 0o600)  # root's, unreadable for nobody
        os.chmod(self.srv.certs.cert("server"), 0o644)
        path = self.write()
        rc, _, err = check_config(path, "--addr", "127.0.0.1:0", user=NOBODY)
        self.assertEqual(rc, 1)
        self.assertIn("failed to load TLS private key '%s': Permission denied"
                      % self.srv.certs.key("server"), err)
        self.assertNotIn("PK -", err)
        path = self.write(tls={"cert": os.path.join(self.dir, "missing.crt")})
        rc, _, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual(rc, 1)
        self.assertIn("failed to load TLS certificate '%s/missing.crt': No such file or "
                      "directory" % self.dir, err)
        self.assertNotIn("X509 -", err)

    def test_address_in_use(self):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            path = self.write()
            rc, _, err = check_config(path, "--addr", "127.0.0.1:%d" % port)
            self.assertEqual(rc, 1)
            self.assertIn("Error: address '127.0.0.1:%d': Address already in use" % port, err)
        finally:
            s.close()
        # Free again: the check bound the port and let it go.
        rc, out, err = check_config(path, "--addr", "127.0.0.1:%d" % port)
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        s2 = socket.socket()
        s2.bind(("127.0.0.1", port))
        s2.close()

    def test_expired_certificate(self):
        crt, key = expired_certificate(self.dir)
        path = self.write(tls={"cert": crt, "key": key})
        rc, _, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual(rc, 1)
        self.assertIn("Error: TLS certificate '%s' expired on 2020-01-02 00:00:00 UTC" % crt, err)
        self.assertIn("expired on 2020-01-02", start_fails(self.srv))

    def test_certificate_expiring_soon_is_a_warning(self):
        crt = os.path.join(self.dir, "soon.crt")
        kesctest._openssl("req", "-x509", "-key", self.srv.certs.key("server"), "-days", "10",
                          "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                          "-out", crt)
        path = self.write(tls={"cert": crt})
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        self.assertRegex(err, r"Warning: TLS certificate '%s' expires on \d{4}-\d\d-\d\d "
                              r"\d\d:\d\d UTC \(in (9|10) days\)" % crt)

    def test_key_that_does_not_match(self):
        self.srv.certs.client("other")
        path = self.write(tls={"key": self.srv.certs.key("other")})
        rc, _, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual(rc, 1)
        self.assertIn("Error: TLS private key '%s' does not match the certificate '%s'"
                      % (self.srv.certs.key("other"), self.srv.certs.cert("server")), err)

    def test_private_key_readable_by_others(self):
        key = self.srv.certs.key("server")
        os.chmod(key, 0o644)
        path = self.write()
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        want = ("TLS private key '%s' is accessible by group or others (mode 0644): restrict "
                "it with chmod 600" % key)
        self.assertIn("Warning: " + want, err)
        # Also at a normal start (issue 9: a world-readable key got no warning).
        self.srv.start()
        self.assertIn(want, self.srv.stderr_text())
        os.chmod(key, 0o600)
        rc, out, err = check_config(path, "--addr", "127.0.0.1:0")
        self.assertNotIn("accessible by group", err)

    def test_dev_and_check_config_refused(self):
        r = kesctest.run_kesc("server", "--dev", "--dir", os.path.join(self.dir, "dev"),
                              "--check-config")
        self.assertEqual(r.returncode, 1, r.stderr)  # a usage error exits 1, as kes
        self.assertFalse(os.path.exists(os.path.join(self.dir, "dev")))


class VaultCheckConfigTest(unittest.TestCase):
    """--check-config with Vault logs in and reads `keys:`; it writes nothing."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kesctest-vault-")
        ready = os.path.join(self.dir, "ready")
        self.log = os.path.join(self.dir, "vault.log")
        self.proc = subprocess.Popen([sys.executable, VAULT_SERVER, "--listen", "127.0.0.1:0",
                                      "--ready-file", ready, "--log", self.log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vault_server.py did not start")
            time.sleep(0.02)
        with open(ready) as f:
            self.url, self.root = f.read().split("\n")[:2]

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, path, body=None):
        import http.client
        import json
        u = urllib.parse.urlparse(self.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"X-Vault-Token": self.root})
            r = conn.getresponse()
            raw = r.read()
            if r.status not in (200, 204):
                raise RuntimeError("%s %s -> %d %r" % (method, path, r.status, raw))
            return json.loads(raw) if raw.strip() else None
        finally:
            conn.close()

    def test_logs_in_and_reads_only(self):
        self.call("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "1"}})
        self.call("POST", "/v1/sys/auth/approle", {"type": "approle"})
        self.call("PUT", "/v1/sys/policies/acl/kes",
                  {"policy": 'path "kv/*" { capabilities = ["create", "read", "delete", '
                             '"list"] }'})
        self.call("POST", "/v1/auth/approle/role/kes", {"token_policies": ["kes"]})
        rid = self.call("GET", "/v1/auth/approle/role/kes/role-id")["data"]["role_id"]
        sid = self.call("POST", "/v1/auth/approle/role/kes/secret-id", {})["data"]["secret_id"]
        with kesctest.Server(start=False, keystore={"vault": {
                "endpoint": self.url, "engine": "kv", "version": "v1",
                "approle": {"id": rid, "secret": sid}}},
                config={"keys": [{"name": "preset"}]}) as srv:
            with open(self.log) as f:
                logged = len(f.readlines())
            rc, out, err = check_config(srv.config_path, "--addr", "127.0.0.1:0")
            self.assertEqual((rc, out.strip()), (0, "OK"), err)
            self.assertIn("Note: keys: 'preset' does not exist in Vault; starting creates it",
                          err)
            with open(self.log) as f:
                requests = [l.split()[1:3] for l in f.readlines()[logged:]]
            paths = [p for _, p in requests]
            self.assertIn("/v1/auth/approle/login", paths)
            self.assertIn("/v1/kv/preset", paths)
            # Logins and token renewals are POSTs under auth/, and sys/capabilities-self is
            # a POST that only reads; everything else that is not a GET or LIST writes.
            writes = [(m, p) for m, p in requests if m in ("PUT", "POST", "DELETE", "PATCH")
                      and not p.startswith("/v1/auth/")
                      and not p.startswith("/v1/sys/capabilities")]
            self.assertEqual(writes, [], requests)
            # Starting creates it (and check-config then finds it).
            srv.start()
            srv.stop()
            rc, out, err = check_config(srv.config_path, "--addr", "127.0.0.1:0")
            self.assertEqual((rc, out.strip()), (0, "OK"), err)
            self.assertNotIn("preset", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
