#!/usr/bin/env python3
"""The kesc command line against a real kesc server over mTLS: every client verb, its output
shapes (kes.md §8), its exit codes and error texts, and `kesc migrate` between filesystem and
Vault keystores (the Vault test server in tests/vault/). Standard library only; every process
started here is stopped again, also when a test fails.

Where a script reads it (standard output not a terminal, standard error, the exit code) the
output is pinned to what KES's `kes` command prints, from KES's cmd/kes/*.go at 63649d0 and the
kms-go v0.3.1 types it re-encodes replies with: "Error: " lines and exit code 1, list headers,
Go's %q quoting, Duration and time formats, json.Encoder's omitempty and indentation.

Environment: KESC_BIN (the kesc binary), KESC_SOURCE_ROOT (the source tree).
"""
import base64
import calendar
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

KESC = os.environ.get("KESC_BIN", "kesc")
SOURCE_ROOT = os.environ.get("KESC_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VAULT_SERVER = os.path.join(SOURCE_ROOT, "tests", "vault", "vault_server.py")
NOT_ALLOWED = "not authorized: insufficient permissions"

# Variables that would change where the CLI connects or which credentials it uses.
CLIENT_ENV = ["MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT",
              "MINIO_KES_CERT_FILE", "KES_CLIENT_CERT", "MINIO_KES_CLIENT_CERT",
              "MINIO_KES_KEY_FILE", "KES_CLIENT_KEY", "MINIO_KES_CLIENT_KEY",
              "MINIO_KES_API_KEY", "KES_API_KEY", "MINIO_KMS_KES_API_KEY", "KESC_CA",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env.update(extra)
    return env


def run(args, env=None, cwd=None, timeout=60):
    """Runs kesc; stdout is a pipe, so the CLI prints its non-terminal (program) output."""
    p = subprocess.run([KESC] + list(args), env=env if env is not None else clean_env(), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def run_tty(args, env, until=None, timeout=20):
    """Runs kesc with standard output on a pseudo-terminal, so it prints for people. Reads
    until the process ends, or until `until` (bytes) was seen and then stops it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([KESC] + list(args), env=env, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and not (until and until in out):
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()
        os.close(master)
    return proc.returncode, out.replace(b"\r\n", b"\n").decode()


def spki_identity(cert_path):
    """Identity as KES computes it, independently of kesc: SHA-256 of the DER SPKI (openssl)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
                         stdout=subprocess.PIPE, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def new_identity(directory, name, *extra):
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    rc, out, err = run(["identity", "new", "--key", key, "--cert", cert] + list(extra) + [name])
    assert rc == 0, err
    return key, cert, out


def start_server(**kwargs):
    """A kesctest.Server (openssl-made server and client certificates, ephemeral port)."""
    return kesctest.Server(**kwargs)


class CLITestCase(unittest.TestCase):
    """One server per class. Identities: "admin" (openssl-made, the admin), "app" (made by
    `kesc identity new`, bound to app-policy) and "unknown" (a certificate the server does
    not know)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kesc-cli-")
        cls.app_key, cls.app_crt, cls.app_id = new_identity(cls.dir, "app")
        policies = {
            "app-policy": {
                "allow": ["/v1/key/generate/app-*", "/v1/key/decrypt/app-*",
                          "/v1/key/describe/app-*"],
                "deny": ["/v1/key/decrypt/app-secret"],
                "identities": [cls.app_id],
            },
            "readonly": {"allow": ["/v1/status"], "deny": [], "identities": []},
        }
        cls.server = start_server(policies=policies)
        cls.ca = cls.server.certs.cert("server")
        cls.admin_id = cls.server.identity("admin")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        report = cls.server.sanitizer_report()
        cls.server.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert report == "", report

    def env(self, who="admin", **extra):
        if who == "app":
            env = clean_env(KES_SERVER=self.server.addr, KES_CLIENT_CERT=self.app_crt,
                            KES_CLIENT_KEY=self.app_key)
        else:
            env = clean_env(KES_SERVER=self.server.addr, KES_CLIENT_CERT=self.server.certs.cert(who),
                            KES_CLIENT_KEY=self.server.certs.key(who))
        env.update(extra)
        return env

    def kesc(self, *args, who="admin", ok=True, **extra):
        rc, out, err = run(list(args) + ["--ca", self.ca], env=self.env(who, **extra))
        if ok:
            self.assertEqual(rc, 0, "kesc %s: %s" % (" ".join(args), err))
        return rc, out, err


VERSION_RE = (r"^Version    \d+\.\d+\.\d+ {10,}commit=\S+\n"
              r"Runtime    \S+ \S+ linux/\S+ +compiler=\S.*\n"
              r"License    Apache-2\.0 {13}https://www\.apache\.org/licenses/LICENSE-2\.0\n"
              r"Copyright  .{22} .+\n$")


class VersionAndHelpTest(unittest.TestCase):
    def test_version(self):
        # kes -v: four "Label      value  detail" lines (main.go).
        rc, out, _ = run(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, VERSION_RE)
        self.assertEqual(run(["-v"]), (0, out, ""))

    def test_help_for_every_verb(self):
        for verb in (["key"], ["key", "create"], ["key", "dek"], ["identity"], ["identity", "new"],
                     ["policy", "show"], ["status"], ["metric"], ["log"], ["migrate"]):
            rc, out, _ = run(["help"] + verb)
            self.assertEqual(rc, 0, verb)
            self.assertIn("Usage:", out, verb)
            rc2, out2, _ = run(verb + ["--help"])
            self.assertEqual((rc2, out2), (0, out), verb)

    def test_usage_errors_exit_1_as_kes(self):
        # cli.Fatalf("%v. See 'kes key ls --help'", err) with pflag's messages: exit 1.
        cases = [
            (["key", "ls", "--bogus"], "unknown flag: --bogus. See 'kesc key ls --help'"),
            (["key", "ls", "-x"], "unknown shorthand flag: 'x' in -x. See 'kesc key ls --help'"),
            (["key", "ls", "--ca"], "flag needs an argument: --ca. See 'kesc key ls --help'"),
            (["key", "create", "k", "-e"],
             "flag needs an argument: 'e' in -e. See 'kesc key create --help'"),
            (["key", "ls", "--color", "sometimes"],
             'invalid argument "sometimes" for "--color" flag: invalid color option. '
             "See 'kesc key ls --help'"),
            (["metric", "--rate", "soon"],
             'invalid argument "soon" for "--rate" flag: time: invalid duration "soon". '
             "See 'kesc metric --help'"),
            (["key", "create"], "no key name specified. See 'kesc key create --help'"),
            (["key", "import", "k"], "no crypto key specified. See 'kesc key import --help'"),
            (["key", "info", "a", "b"], "too many arguments. See 'kesc key info --help'"),
            (["key", "dek"], "no key name specified. See 'kesc key dek --help'"),
            (["policy", "show"], "no policy name specified. See 'kesc policy show --help'"),
            (["identity", "of"], "no API key or certificate specified. See 'kesc identity of --help'"),
            (["log", "--audit", "--error"], "cannot display audit and error logs at the same time"),
            (["no-such-verb"], '"no-such-verb" is not a kesc command. See \'kesc --help\''),
            (["key", "frobnicate"], '"frobnicate" is not a key command. See \'kesc key --help\''),
            (["key", "--bogus"], "unknown flag: --bogus. See 'kesc key --help'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertEqual(run(args), (1, "", "Error: " + message + "\n"))
        self.assertEqual(run(["key", "decrypt", "k", "not base64!"])[:2], (1, ""))
        self.assertEqual(run(["migrate", "--from", "a.yml"])[:2], (1, ""))
        self.assertEqual(run(["identity", "new", "--expiry", "soon"])[:2], (1, ""))

    def test_command_group_without_command_prints_usage_exit_2(self):
        # kes, kes key, kes policy: the usage on standard error and exit code 2.
        for args in ([], ["key"], ["policy"]):
            with self.subTest(args=args):
                rc, out, err = run(args)
                self.assertEqual((rc, out), (2, ""))
                self.assertTrue(err.startswith("Usage:"), err)


class ConnectionErrorsTest(unittest.TestCase):
    def test_unknown_server(self):
        # A port nobody listens on: bind one, close it, use it.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, out, err = run(["key", "create", "k"], env=clean_env(KES_SERVER="127.0.0.1:%d" % port))
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertTrue(err.startswith('Error: failed to create key "k": '), err)
        self.assertIn("cannot connect to https://127.0.0.1:%d" % port, err)

    def test_api_key_is_refused_clearly(self):
        rc, _, err = run(["key", "ls"], env=clean_env(
            KES_API_KEY="kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs"))
        self.assertEqual(rc, 1)
        self.assertIn("API keys (kes:v1:…) are not supported by kesc; use a client certificate", err)


class KeyTest(CLITestCase):
    def test_create_info_ls_rm(self):
        self.kesc("key", "create", "k-one", "k-two")
        rc, _, err = self.kesc("key", "create", "k-one", ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("key already exists", err)

        _, out, _ = self.kesc("key", "info", "k-one", "--json")
        info = json.loads(out)
        self.assertEqual(info["name"], "k-one")
        self.assertEqual(info.get("algorithm", "AES256"), "AES256")
        self.assertEqual(info["created_by"], self.admin_id)
        _, out, _ = self.kesc("key", "info", "k-one")
        self.assertRegex(out, r"Name\s+k-one\n")
        self.assertRegex(out, r"Owner\s+%s" % self.admin_id)

        _, out, _ = self.kesc("key", "ls", "--json")
        self.assertTrue({"k-one", "k-two"} <= set(json.loads(out)))
        _, out, _ = self.kesc("key", "ls", "k-t*")
        self.assertEqual(out, "Key\nk-two\n")

        self.kesc("key", "rm", "k-two")
        rc, _, err = self.kesc("key", "info", "k-two", ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("key does not exist", err)
        self.assertEqual(self.kesc("key", "rm", "k-two", ok=False)[0], 1)

    def test_dek_and_decrypt_round_trip(self):
        self.kesc("key", "create", "k-dek")
        _, out, _ = self.kesc("key", "dek", "k-dek")
        # Non-terminal output: one JSON object, keys in KES's order, no trailing newline.
        self.assertRegex(out, r'^\{"plaintext":"[A-Za-z0-9+/=]+","ciphertext":"[A-Za-z0-9+/=]+"\}$')
        dek = json.loads(out)
        self.assertEqual(len(base64.b64decode(dek["plaintext"])), 32)
        _, out, _ = self.kesc("key", "decrypt", "k-dek", dek["ciphertext"])
        self.assertEqual(out, '{"plaintext":"%s"}' % dek["plaintext"])

        context = base64.b64encode(b'{"bucket":"bucket/object"}').decode()
        _, out, _ = self.kesc("key", "dek", "k-dek", context)
        dek = json.loads(out)
        _, out, _ = self.kesc("key", "decrypt", "k-dek", dek["ciphertext"], context)
        self.assertEqual(json.loads(out)["plaintext"], dek["plaintext"])
        rc, _, err = self.kesc("key", "decrypt", "k-dek", dek["ciphertext"], ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("decryption failed: ciphertext is not authentic", err)

    def test_encrypt_decrypt_and_import(self):
        raw = bytes(range(32))
        self.kesc("key", "import", "k-imported", base64.b64encode(raw).decode())
        _, out, _ = self.kesc("key", "encrypt", "k-imported", "hello, world")
        self.assertRegex(out, r'^\{"ciphertext":"[A-Za-z0-9+/=]+"\}$')
        ct = json.loads(out)["ciphertext"]
        _, out, _ = self.kesc("key", "decrypt", "k-imported", ct)
        self.assertEqual(base64.b64decode(json.loads(out)["plaintext"]), b"hello, world")
        _, out, _ = self.kesc("key", "info", "k-imported", "--json")
        # kms-go's KeyInfo: AES256 is the zero KeyAlgorithm, which omitempty leaves out.
        self.assertNotIn("algorithm", json.loads(out))
        _, out, _ = self.kesc("key", "info", "k-imported")
        self.assertIn("\nAlgorithm   AES256\n", out)
        rc, _, err = self.kesc("key", "import", "k-imported", base64.b64encode(raw).decode(), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("key already exists", err)
        rc, _, err = self.kesc("key", "import", "k-short", base64.b64encode(b"short").decode(), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("invalid key size", err)

    def test_next_server_when_one_is_down(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % sock.getsockname()[1]
        sock.close()
        rc, out, err = self.kesc("key", "create", "k-failover",
                                 KES_SERVER="http://%s,%s" % (dead, self.server.addr))
        self.assertEqual(rc, 0, err)
        self.kesc("key", "info", "k-failover")

    def test_terminal_output(self):
        self.kesc("key", "create", "k-tty")
        rc, out = run_tty(["key", "dek", "k-tty", "--ca", self.ca], self.env())
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^\nplaintext:  [A-Za-z0-9+/=]{44}\nciphertext: [A-Za-z0-9+/=]+\n$")
        rc, out = run_tty(["key", "ls", "k-tt*", "--ca", self.ca], self.env())
        self.assertEqual((rc, out), (0, "Key\nk-tty\n"))

    def test_json_flag_forces_json(self):
        self.kesc("key", "create", "k-json")
        _, out, _ = self.kesc("key", "dek", "--json", "k-json")
        self.assertEqual(set(json.loads(out)), {"plaintext", "ciphertext"})


class AuthorizationTest(CLITestCase):
    def test_policy_allows_and_denies(self):
        self.kesc("key", "create", "app-data", "app-secret", "other")
        _, out, _ = self.kesc("key", "dek", "app-data", who="app")
        dek = json.loads(out)
        _, out, _ = self.kesc("key", "decrypt", "app-data", dek["ciphertext"], who="app")
        self.assertEqual(json.loads(out)["plaintext"], dek["plaintext"])

        for args in (["key", "create", "app-new"], ["key", "dek", "other"], ["key", "ls"],
                     ["policy", "ls"], ["status"]):
            rc, out, err = self.kesc(*args, who="app", ok=False)
            self.assertEqual((rc, out), (1, ""), args)
            self.assertIn(NOT_ALLOWED, err, args)
        _, out, _ = self.kesc("key", "dek", "app-secret", who="app")
        ct = json.loads(out)["ciphertext"]
        rc, _, err = self.kesc("key", "decrypt", "app-secret", ct, who="app", ok=False)
        self.assertEqual(rc, 1)
        self.assertIn(NOT_ALLOWED, err)

    def test_unknown_certificate_is_refused(self):
        rc, out, err = self.kesc("key", "create", "x", who="unknown", ok=False)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(NOT_ALLOWED, err)

    def test_untrusted_server_certificate(self):
        rc, _, err = run(["key", "ls"], env=self.env())
        self.assertEqual(rc, 1)
        self.assertIn("server certificate is not trusted", err)
        rc, out, _ = run(["key", "ls", "-k"], env=self.env())  # --insecure
        self.assertEqual(rc, 0)
        rc, out, _ = run(["key", "ls"], env=self.env(KESC_CA=self.ca))
        self.assertEqual(rc, 0)


class IdentityTest(CLITestCase):
    def test_new_defaults_and_refuses_overwrite(self):
        work = tempfile.mkdtemp(dir=self.dir)
        rc, out, err = run(["identity", "new"], cwd=work)
        self.assertEqual(rc, 0, err)
        key, crt = os.path.join(work, "private.key"), os.path.join(work, "public.crt")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(out, spki_identity(crt))  # non-terminal: the bare identity
        text = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-text"],
                              stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("DNS:localhost", text)
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertIn("ASN1 OID: prime256v1", text)

        with open(key, "rb") as f:
            before = f.read()
        rc, _, err = run(["identity", "new"], cwd=work)
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err)
        with open(key, "rb") as f:
            self.assertEqual(f.read(), before)
        rc, out2, _ = run(["identity", "new", "--force"], cwd=work)
        self.assertEqual(rc, 0)
        self.assertNotEqual(out2, out)
        self.assertEqual(out2, spki_identity(crt))

    def test_new_with_sans_and_expiry(self):
        key, crt, out = new_identity(self.dir, "kes.example.net", "--ip", "10.1.2.3", "--dns", "alt.example",
                                     "--expiry", "48h")
        text = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-text", "-dates"],
                              stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("DNS:alt.example, DNS:kes.example.net, IP Address:10.1.2.3", text)
        self.assertIn("CN = kes.example.net", text)
        self.assertNotIn("localhost", text)
        self.assertEqual(run(["identity", "new", "--expiry", "soon"])[0], 1)

    def test_of(self):
        rc, out, _ = run(["identity", "of", self.app_crt])
        self.assertEqual((rc, out), (0, spki_identity(self.app_crt)))
        self.assertEqual(out, self.app_id)
        # A certificate made by openssl (kesctest): the same identity the server computes.
        rc, out, _ = run(["identity", self.server.certs.cert("admin")])
        self.assertEqual((rc, out), (0, self.admin_id))
        rc, out, _ = run(["identity", "of", self.app_crt, self.server.certs.cert("admin")])
        self.assertEqual(out, "%s  %s\n%s  %s\n" % (self.app_id, self.app_crt, self.admin_id,
                                                     self.server.certs.cert("admin")))
        # API keys: the identity is computable without Ed25519 signing (kes.md §2.2 vector).
        rc, out, _ = run(["identity", "of", "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs"])
        self.assertEqual((rc, out), (0, "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"))
        rc, _, err = run(["identity", "of", os.path.join(self.dir, "missing.crt")])
        self.assertEqual(rc, 1)
        # An API key is a private key: neither an error nor a label ever repeats it.
        bad_key = "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8N"
        rc, out, err = run(["identity", "of", bad_key])
        self.assertEqual(rc, 1)
        self.assertIn("API key #1", err)
        self.assertNotIn("AGaV6VXHasF0", out + err)
        good_key = "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs"
        rc, out, err = run(["identity", "of", self.app_crt, good_key])
        self.assertEqual((rc, out), (0, "%s  %s\nea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6  API key #2\n" % (self.app_id, self.app_crt)))
        self.assertNotIn("AGaV6VXHasF0", out + err)

    def test_info_and_ls(self):
        _, out, _ = self.kesc("identity", "info", "--json")
        self_info = json.loads(out)
        self.assertEqual(self_info["identity"], self.admin_id)
        self.assertTrue(self_info["admin"])
        _, out, _ = self.kesc("identity", "info", self.app_id, "--json")
        self.assertEqual(json.loads(out)["policy"], "app-policy")
        _, out, _ = self.kesc("identity", "info", self.app_id)
        self.assertRegex(out, r"Policy\s+app-policy")
        rc, _, err = self.kesc("identity", "info", "0" * 64, ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("identity does not exist", err)
        _, out, _ = self.kesc("identity", "ls", "--json")
        self.assertTrue({self.admin_id, self.app_id} <= set(json.loads(out)))
        _, out, _ = self.kesc("identity", "ls", self.app_id[:6] + "*")
        self.assertIn(self.app_id + "\n", out)


class PolicyTest(CLITestCase):
    def test_ls_info_show(self):
        _, out, _ = self.kesc("policy", "ls")
        self.assertEqual(out, "Key\napp-policy\nreadonly\n")  # KES's header, "Key"
        _, out, _ = self.kesc("policy", "ls", "--json", "app*")
        self.assertEqual(json.loads(out), ["app-policy"])
        _, out, _ = self.kesc("policy", "info", "app-policy", "--json")
        info = json.loads(out)
        self.assertEqual(info["name"], "app-policy")
        self.assertIn("created_at", info)
        _, out, _ = self.kesc("policy", "show", "app-policy")
        self.assertEqual(list(json.loads(out)["allow"]), ["/v1/key/decrypt/app-*",
                                                          "/v1/key/describe/app-*",
                                                          "/v1/key/generate/app-*"])
        _, out, _ = self.kesc("policy", "show", "app-policy", "--json")
        self.assertIn("/v1/key/describe/app-*", json.loads(out)["allow"])
        rc, _, err = self.kesc("policy", "info", "nope", ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("policy does not exist", err)


class StatusTest(CLITestCase):
    def test_status(self):
        _, out, _ = self.kesc("status", "--json")
        st = json.loads(out)
        self.assertIn("version", st)
        self.assertGreaterEqual(st.get("uptime", 0), 0)  # omitempty: absent at 0
        self.assertNotIn("keystore_unreachable", st)
        _, out, _ = self.kesc("status")
        self.assertTrue(out.startswith("● %s\n  Version  " % self.server.addr), out)
        _, out, _ = self.kesc("status", "--short")
        self.assertEqual(out, "● %s\n" % self.server.addr)
        _, out, _ = self.kesc("status", "--api", "--json")
        paths = {(r["method"], r["path"]) for r in json.loads(out)}
        self.assertIn(("PUT", "/v1/key/create/"), paths)
        self.assertIn(("GET", "/v1/log/audit"), paths)
        _, out, _ = self.kesc("status", "--api")
        self.assertIn("\n  GET     /v1/status                   15s\n", out)

    def test_metric_raw(self):
        # kesc extension: the Prometheus text once.
        self.kesc("key", "create", "m-key")
        _, out, _ = self.kesc("metric", "--raw")
        self.assertIn("# TYPE kes_http_request_success counter", out)
        self.assertRegex(out, r'kes_http_request_success\{code="200"\} [1-9]')


class LogTest(CLITestCase):
    def test_audit_log_receives_a_line(self):
        args = [KESC, "log", "--audit", "--json", "--ca", self.ca]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        try:
            line = b""
            deadline = time.time() + 20
            # The subscription starts when the server has the request; keep making requests
            # until one of them shows up in the stream.
            n = 0
            while not line.endswith(b"\n") and time.time() < deadline:
                n += 1
                self.kesc("key", "create", "log-key-%d" % n)
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                if ready:
                    line += os.read(proc.stdout.fileno(), 65536)
                self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            self.assertTrue(line.endswith(b"\n"), "no audit event within 20s")
            event = json.loads(line.split(b"\n")[0])
            self.assertTrue(event["request"]["path"].startswith("/v1/key/create/log-key-"))
            self.assertEqual(event["request"]["identity"], self.admin_id)
            self.assertEqual(event["response"]["code"], 200)
        finally:
            proc.kill()
            proc.communicate(timeout=10)

    def test_audit_table_on_a_terminal(self):
        header = ("Time        Status    Identity                IP                 API"
                  "                               Latency")
        result = {}

        def follow():
            result["out"] = run_tty(["log", "--ca", self.ca], self.env(), until=b"/v1/key/create/tty-log",
                                    timeout=20)

        t = threading.Thread(target=follow)
        t.start()
        deadline = time.time() + 20
        while t.is_alive() and time.time() < deadline:
            self.kesc("key", "create", "tty-log-%d" % int(time.time() * 1000))
            t.join(0.5)
        t.join()
        _, out = result["out"]
        self.assertIn(header, out)
        self.assertRegex(out, r"\d\d:\d\d:\d\d    200       %s    127\.0\.0\.1 {6}    "
                              r"/v1/key/create/tty-log-\d+ *    \S+" % self.admin_id[:20])

    def test_error_log_is_reachable(self):
        # The stream answers (200) and stays open until the client goes away.
        args = [KESC, "log", "--error", "--ca", self.ca]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        try:
            time.sleep(1)
            self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        finally:
            proc.kill()
            proc.communicate(timeout=10)

    def test_log_denied_for_policy_without_it(self):
        rc, out, err = self.kesc("log", "--audit", who="app", ok=False)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(NOT_ALLOWED, err)
        rc, out, err = self.kesc("log", "--audit", who="unknown", ok=False)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(NOT_ALLOWED, err)


def go_clock(rfc3339):
    """time.Time's Date()/Clock() in the time's own zone, as `kes` prints it."""
    return rfc3339[:10] + " " + rfc3339[11:19]


def ed25519_identity(api_key):
    """The identity of a KES API key, computed with openssl from the seed (kes.md §2.2)."""
    raw = base64.b64decode(api_key[len("kes:v1:"):])
    assert len(raw) == 33 and raw[0] == 0
    pkcs8 = bytes.fromhex("302e020100300506032b657004220420") + raw[1:]
    spki = subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
                          input=pkcs8, stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(spki).hexdigest()


class KesOutputTest(CLITestCase):
    """What `kes` prints where a script reads it, verb by verb (cmd/kes/*.go)."""

    def describe(self, path):
        r = self.server.request("GET", path)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_operation_errors(self):
        self.kesc("key", "create", "cli-1")
        key = base64.b64encode(b"\x01" * 32).decode()
        cases = [
            (["key", "create", "cli-1"], 'failed to create key "cli-1": key already exists'),
            (["key", "import", "cli-1", key], 'failed to import "cli-1": key already exists'),
            (["key", "rm", "cli-none"], 'failed to remove key "cli-none": key does not exist'),
            (["key", "info", "cli-none"], "failed to describe keys: key does not exist"),
            (["key", "dek", "cli-none"], "failed to derive key: key does not exist"),
            (["key", "encrypt", "cli-none", "msg"], "failed to encrypt message: key does not exist"),
            (["key", "decrypt", "cli-none", "AAAA"],
             "failed to decrypt ciphertext: key does not exist"),
            (["policy", "info", "nope"], "policy does not exist"),
            (["policy", "show", "nope"], "failed to show policy 'nope': policy does not exist"),
            (["identity", "info", "0" * 64], "identity does not exist"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertEqual(self.kesc(*args, ok=False), (1, "", "Error: " + message + "\n"))

    def test_enclave_and_color_are_accepted(self):
        # kes takes -e/--enclave NAME (ignored by a KES server without enclaves) and
        # --color auto|never|always; scripts that pass them must keep working.
        self.kesc("key", "create", "-e", "tenant-1", "enc-b")
        self.kesc("key", "create", "--enclave=tenant-1", "enc-a")
        for color in (["--color", "always"], ["--color=never"], ["--color", "AUTO"]):
            with self.subTest(color=color):
                _, out, _ = self.kesc("key", "ls", *color, "enc-*")
                self.assertEqual(out, "Key\nenc-a\nenc-b\n")
        self.kesc("key", "info", "-e", "x", "--color", "never", "enc-a")
        self.kesc("policy", "show", "--enclave", "x", "app-policy")
        self.kesc("identity", "info", "-e", "x", "--color", "never")
        self.kesc("status", "--color", "never")
        # pflag's boolean flags take an explicit value.
        _, out, _ = self.kesc("key", "ls", "--json=false", "enc-*")
        self.assertEqual(out, "Key\nenc-a\nenc-b\n")
        _, out, _ = self.kesc("key", "ls", "--json=true", "enc-*")
        self.assertEqual(out, '["enc-a","enc-b"]\n')

    def test_list_headers_and_json(self):
        self.kesc("key", "create", "lsh-b", "lsh-a")
        self.assertEqual(self.kesc("key", "ls", "lsh-*")[1], "Key\nlsh-a\nlsh-b\n")
        self.assertEqual(self.kesc("key", "ls", "--json", "lsh-*")[1], '["lsh-a","lsh-b"]\n')
        self.assertEqual(self.kesc("key", "ls", "nomatch-*")[1], "")
        self.assertEqual(self.kesc("key", "ls", "--json", "nomatch-*")[1], "[]\n")
        self.assertEqual(self.kesc("policy", "ls")[1], "Key\napp-policy\nreadonly\n")
        ids = sorted([self.admin_id, self.app_id])
        self.assertEqual(self.kesc("identity", "ls")[1], "Identity\n" + "".join(i + "\n" for i in ids))
        self.assertEqual(self.kesc("identity", "ls", "--json")[1], json.dumps(ids, separators=(",", ":")) + "\n")
        # On a terminal the policy list is headed "Policy" (kesc's choice; KES prints "Key").
        rc, out = run_tty(["policy", "ls", "--ca", self.ca], self.env())
        self.assertEqual((rc, out), (0, "Policy\napp-policy\nreadonly\n"))

    def test_kesc_ls(self):
        self.kesc("key", "create", "top-2", "top-1")
        self.assertEqual(self.kesc("ls", "top*")[1], "Key\ntop-1\ntop-2\n")
        self.assertEqual(self.kesc("ls", "--json", "top*")[1], '["top-1","top-2"]\n')
        self.assertEqual(self.kesc("ls", "-p")[1], "Policy\napp-policy\nreadonly\n")
        self.assertEqual(self.kesc("ls", "--policy", "--json", "read*")[1], '["readonly"]\n')
        self.assertEqual(self.kesc("ls", "-i", self.app_id[:8] + "*")[1],
                         "Identity\n%s\n" % self.app_id)
        self.assertEqual(self.kesc("ls", "-s", self.server.addr, "top-1*")[1], "Key\ntop-1\n")
        rc, out, err = self.kesc("ls", "-p", "-i", ok=False)
        self.assertEqual((rc, out, err), (1, "", "Error: '-p / --policy' and '-i / --identity' "
                                                  "must not be used at the same time\n"))
        rc, out, err = self.kesc("ls", "-a", "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
                                 ok=False)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("API keys (kes:v1:…) are not supported by kesc", err)
        self.assertNotIn("AGaV6VXHasF0", err)

    def test_key_info(self):
        self.kesc("key", "create", "info-aes")
        self.kesc("key", "import", "--cipher", "ChaCha20", "info-cc",
                  base64.b64encode(b"\x02" * 32).decode())
        aes = self.describe("/v1/key/describe/info-aes")
        cc = self.describe("/v1/key/describe/info-cc")
        # Text: four lines, the last without a newline (describeKeyCmd).
        _, out, _ = self.kesc("key", "info", "info-aes")
        self.assertEqual(out, "Name        info-aes\nAlgorithm   AES256\nDate        %s\nOwner       %s"
                         % (go_clock(aes["created_at"]), self.admin_id))
        _, out, _ = self.kesc("key", "info", "info-cc")
        self.assertIn("\nAlgorithm   ChaCha20\n", out)
        # JSON: kms-go's KeyInfo, AES256 (the zero value) left out by omitempty.
        _, out, _ = self.kesc("key", "info", "--json", "info-aes")
        self.assertEqual(out, '{"name":"info-aes","created_at":"%s","created_by":"%s"}\n'
                         % (aes["created_at"], self.admin_id))
        _, out, _ = self.kesc("key", "info", "--json", "info-cc")
        self.assertEqual(out, '{"name":"info-cc","algorithm":"ChaCha20","created_at":"%s",'
                              '"created_by":"%s"}\n' % (cc["created_at"], self.admin_id))

    def test_crypto_output(self):
        self.kesc("key", "create", "out-key")
        _, out, _ = self.kesc("key", "encrypt", "out-key", "hello")
        ct = json.loads(out)["ciphertext"]
        # On a terminal: one space after "plaintext:" and "ciphertext:" (two for dek's
        # "plaintext:", aligned under "ciphertext:").
        rc, out = run_tty(["key", "decrypt", "out-key", ct, "--ca", self.ca], self.env())
        self.assertEqual((rc, out), (0, "\nplaintext: %s\n" % base64.b64encode(b"hello").decode()))
        rc, out = run_tty(["key", "encrypt", "out-key", "hi", "--ca", self.ca], self.env())
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^\nciphertext: [A-Za-z0-9+/=]+\n$")

    def test_identity_of_and_bare(self):
        self.assertEqual(run(["identity", "of", self.app_crt]), (0, self.app_id, ""))
        self.assertEqual(run(["identity", self.app_crt]), (0, self.app_id, ""))
        rc, out = run_tty(["identity", "of", self.app_crt], clean_env())
        self.assertEqual((rc, out), (0, "Identity:\n\n   %s\n" % self.app_id))

    def test_identity_makes_api_keys(self):
        rc, key, err = run(["identity"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(key, r"^kes:v1:A[A-Za-z0-9+/]{43}$")  # no newline, as kes
        self.assertNotEqual(run(["identity"])[1], key)
        identity = ed25519_identity(key)
        self.assertEqual(run(["identity", key]), (0, identity, ""))
        self.assertEqual(run(["identity", "of", key]), (0, identity, ""))
        # `kes identity FILE` with an Ed25519 PKCS#8 key prints the API key of that key.
        seed = base64.b64decode(key[7:])[1:]
        der = bytes.fromhex("302e020100300506032b657004220420") + seed
        pem = os.path.join(self.dir, "ed25519.key")
        with open(pem, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n"
                    % base64.b64encode(der).decode())
        self.assertEqual(run(["identity", pem]), (0, key, ""))
        rc, out, err = run(["identity", self.app_key])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("contains unsupported private key. Only ed25519 private keys are supported", err)
        rc, out = run_tty(["identity"], clean_env())
        self.assertEqual(rc, 0)
        self.assertIn("Your API key:\n\n   kes:v1:", out)
        api_key = re.search(r"kes:v1:\S+", out).group(0)
        self.assertIn("\n   %s\n" % ed25519_identity(api_key), out)

    def test_policy_info_and_show(self):
        info = self.describe("/v1/policy/describe/app-policy")
        # Text: the date in the local time zone (Local()), "Created by" when known.
        _, out, _ = self.kesc("policy", "info", "app-policy", TZ="UTC")
        self.assertEqual(out, "Name        app-policy\nDate        %s\nCreated by  %s\n"
                         % (go_clock(info["created_at"]), info["created_by"]))
        _, out, _ = self.kesc("policy", "info", "app-policy", TZ="JST-9")
        utc = calendar.timegm(time.strptime(go_clock(info["created_at"]), "%Y-%m-%d %H:%M:%S"))
        shifted = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(utc + 9 * 3600))
        self.assertIn("\nDate        %s\n" % shifted, out)
        _, out, _ = self.kesc("policy", "info", "--json", "app-policy")
        self.assertEqual(out, '{"name":"app-policy","created_at":"%s","created_by":"%s"}\n'
                         % (info["created_at"], info["created_by"]))
        # show, not on a terminal: the policy as JSON (showPolicyCmd's Response type),
        # empty rule sets left out.
        _, out, _ = self.kesc("policy", "show", "app-policy")
        self.assertEqual(out, '{"allow":{"/v1/key/decrypt/app-*":{},"/v1/key/describe/app-*":{},'
                              '"/v1/key/generate/app-*":{}},"deny":{"/v1/key/decrypt/app-secret":{}},'
                              '"created_at":"%s","created_by":"%s"}\n'
                         % (info["created_at"], info["created_by"]))
        ro = self.describe("/v1/policy/describe/readonly")
        _, out, _ = self.kesc("policy", "show", "readonly")
        self.assertEqual(out, '{"allow":{"/v1/status":{}},"created_at":"%s","created_by":"%s"}\n'
                         % (ro["created_at"], ro["created_by"]))
        # --json on a terminal: indented by json.Encoder.SetIndent("", "  ").
        rc, out = run_tty(["policy", "show", "--json", "readonly", "--ca", self.ca], self.env())
        self.assertEqual((rc, out), (0, '{\n  "allow": {\n    "/v1/status": {}\n  },\n'
                                        '  "created_at": "%s",\n  "created_by": "%s"\n}\n'
                                     % (ro["created_at"], ro["created_by"])))

    def test_identity_info(self):
        app = self.describe("/v1/identity/describe/" + self.app_id)
        _, out, _ = self.kesc("identity", "info", self.app_id)
        self.assertEqual(out, "Identity    %s\nPolicy      app-policy\nCreated At  %s\n"
                              "Role        User\nCreated By  %s\n"
                         % (self.app_id, go_clock(app["created_at"]), app["created_by"]))
        admin = self.describe("/v1/identity/describe/" + self.admin_id)
        _, out, _ = self.kesc("identity", "info", self.admin_id)
        self.assertEqual(out, "Identity    %s\nCreated At  %s\nRole        Admin\n"
                         % (self.admin_id, go_clock(admin["created_at"])))
        me = self.describe("/v1/identity/self/describe")
        _, out, _ = self.kesc("identity", "info")
        self.assertEqual(out, "Identity    %s\nCreated At  %s\nRole        Admin\n"
                         % (self.admin_id, go_clock(me["created_at"])))
        # A policy's identity: its policy and rules follow (DescribeSelf has no policy date,
        # so kes prints the zero time there).
        _, out, _ = self.kesc("identity", "info", who="app")
        self.assertEqual(out, "Identity    %s\nCreated At  %s\nRole        User\nCreated By  %s\n\n"
                              "Policy      app-policy\nCreated At  0001-01-01 00:00:00\n"
                              "Allow      \n"
                              "            · /v1/key/decrypt/app-*\n"
                              "            · /v1/key/describe/app-*\n"
                              "            · /v1/key/generate/app-*\n"
                              "Deny       \n"
                              "            · /v1/key/decrypt/app-secret\n"
                         % (self.app_id, go_clock(app["created_at"]), app["created_by"]))

    def test_status(self):
        _, out, _ = self.kesc("status")
        self.assertRegex(out, r"^● %s\n  Version  \d+\.\d+\.\d+\n"
                              r"  Uptime   \d+ (seconds|minutes|hours)\n  Latency  \d+(ms|s|\.\d+s)\n"
                              r"  OS       linux\n  CPUs     \d+ (amd64|arm64|386|arm|\S+)\n"
                              r"  Memory  \n  · Heap   \d+(\.\d)?[KMGTP]?B\n"
                              r"  · Stack  \d+(\.\d)?[KMGTP]?B\n$" % re.escape(self.server.addr))
        self.assertEqual(self.kesc("status", "-s")[1], "● %s\n" % self.server.addr)
        # JSON: kms-go's State re-encoded — its order, zero values left out, compact.
        _, out, _ = self.kesc("status", "--json")
        self.assertTrue(out.endswith("}\n") and " " not in out, out)
        order = ["version", "os", "arch", "uptime", "num_cpu", "num_cpu_used", "mem_heap_used",
                 "mem_stack_used", "keystore_latency", "keystore_unreachable",
                 "keystore_unavailable"]
        keys = list(json.loads(out))
        self.assertEqual(keys, [k for k in order if k in keys])
        self.assertTrue({"version", "os", "arch", "num_cpu", "keystore_latency"} <= set(keys))
        self.assertTrue(all(v not in (0, False, "") for v in json.loads(out).values()), out)
        # --api: kes's table after the status, and API JSON with omitempty.
        _, out, _ = self.kesc("status", "--api", "-s")
        self.assertTrue(out.startswith("● %s\n\n  Method  API                          Timeout\n"
                                       "  GET     /version                     10s\n"
                                       % self.server.addr), out)
        self.assertIn("\n  GET     /v1/log/audit                Inf\n", out)
        _, out, _ = self.kesc("status", "--api", "--json")
        self.assertTrue(out.startswith('[{"method":"GET","path":"/version","timeout":10},'), out)
        self.assertIn('{"method":"PUT","path":"/v1/key/import/","max_body":1000000,"timeout":15}', out)
        self.assertIn('{"method":"GET","path":"/v1/log/audit"}', out)

    def test_metric_json_snapshots_until_interrupted(self):
        self.kesc("key", "create", "metric-key")
        proc = subprocess.Popen([KESC, "metric", "--rate", "200ms", "--ca", self.ca],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        lines = []
        try:
            buf = b""
            deadline = time.time() + 60
            while len(lines) < 2 and time.time() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                if ready:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        self.fail("metric ended: %r" % proc.stderr.read())
                    buf += chunk
                    *done, buf = buf.split(b"\n")
                    lines += done
            self.assertGreaterEqual(len(lines), 2, "fewer than two snapshots in 60 s")
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(timeout=30), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        # kms-go's histogram keys from the server's bucket bounds: Duration(1000*le) ms, those
        # below 1 ms (0) dropped, equal ones merged; Go sorts the keys as text. KES's own
        # buckets (10ms … 10s) are among them.
        text = self.server.request("GET", "/v1/metrics").body.decode()
        bounds = re.findall(r'^kes_http_response_time_bucket\{le="([^"]+)"\}', text, re.M)
        buckets = sorted({str(int(1000 * float(le)) * 1000000) for le in bounds
                          if le != "+Inf" and int(1000 * float(le)) > 0})
        self.assertTrue({str(ms * 1000000) for ms in (10, 50, 100, 250, 500, 1000, 1500, 3000,
                                                       5000, 10000)} <= set(buckets), buckets)
        for line in lines[:2]:
            m = json.loads(line)
            self.assertEqual(list(m), [
                "kes_http_request_success", "kes_http_request_error", "kes_http_request_failure",
                "kes_http_request_active", "kes_log_audit_events", "kes_log_error_events",
                "kes_http_response_time", "kes_system_up_time", "kes_system_num_cpu",
                "kes_system_num_cpu_used", "kes_system_num_threads", "kes_system_mem_heap_used",
                "kes_system_mem_heap_objects", "kes_system_mem_stack_used"])
            self.assertEqual(list(m["kes_http_response_time"]), buckets)  # Go sorts map keys
            self.assertGreaterEqual(m["kes_http_request_success"], 1)
            self.assertEqual(m["kes_system_up_time"] % 1000000000, 0)  # whole seconds, in ns
            self.assertTrue(all(isinstance(v, int) for k, v in m.items()
                                if k != "kes_http_response_time"))

    def follow_log(self, args, until, make):
        """Runs `kesc log ARGS` with stdout a pipe, calls make() until `until` shows up."""
        proc = subprocess.Popen([KESC, "log"] + args + ["--ca", self.ca], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env())
        out = b""
        try:
            deadline = time.time() + 30
            n = 0
            while until not in out and time.time() < deadline:
                n += 1
                make(n)
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                if ready:
                    out += os.read(proc.stdout.fileno(), 65536)
                self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        finally:
            proc.kill()
            proc.communicate(timeout=10)
        return out.decode()

    def test_log_table_when_piped(self):
        out = self.follow_log([], b"/v1/key/create/plog-", lambda n: self.kesc("key", "create", "plog-%d" % n))
        lines = out.split("\n")
        self.assertEqual(lines[0], "Time        Status    Identity                IP                 "
                                   "API                               Latency")
        self.assertRegex(lines[1], r"^\d\d:\d\d:\d\d    200       %s    127\.0\.0\.1          "
                                   r"/v1/key/create/plog-\d+ +    \d+(\.\d+)?(ns|µs|ms|s)$"
                         % self.admin_id[:20])

    def test_log_json_is_kms_go_shape(self):
        out = self.follow_log(["--json"], b"/v1/key/create/jlog-", lambda n: self.kesc("key", "create", "jlog-%d" % n))
        event = json.loads(out.split("\n")[0])
        self.assertEqual(list(event), ["time", "request", "response"])
        self.assertEqual(list(event["request"]), ["ip", "path", "identity"])
        self.assertEqual(list(event["response"]), ["code", "time"])
        self.assertEqual(event["request"]["ip"], "127.0.0.1")



class DifferencesPageTest(CLITestCase):
    """man/kesc-differences.7 and the README stay true: every extension flag the page names
    exists in that command's usage, what it says is not provided is not, and every route the
    README lists is served."""

    def page(self, name):
        with open(os.path.join(SOURCE_ROOT, name)) as f:
            return f.read()

    def section(self, text, title):
        start = text.index(".Sh " + title + "\n")
        end = text.find("\n.Sh ", start + 1)
        return text[start:end if end >= 0 else len(text)]

    def test_extension_flags_exist(self):
        ext = self.section(self.page("man/kesc-differences.7"), "EXTENSIONS")
        entries = re.findall(r"^\.It Nm kesc Cm ((?:[a-z]+ )+)Fl (-?[a-z-]+)", ext, re.M)
        self.assertGreaterEqual(len(entries), 8, entries)
        for words, flag in entries:
            verb = words.split()
            with self.subTest(verb=verb, flag=flag):
                rc, out, _ = run(verb + ["--help"])
                self.assertEqual(rc, 0)
                self.assertIn("-" + flag, out)

    def test_not_provided_is_not_provided(self):
        text = self.section(self.page("man/kesc-differences.7"), "DELIBERATE DIFFERENCES")
        self.assertIn(".Nm kes Cm update", text)
        self.assertEqual(run(["update"])[0:2], (1, ""))
        self.assertIn(".Fl -auto-completion", text)
        self.assertEqual(run(["--auto-completion"])[0:2], (1, ""))
        self.assertIn(".Fl -encrypt", text)
        self.assertEqual(run(["identity", "new", "--encrypt"])[0:2], (1, ""))

    def test_readme_routes_are_served(self):
        readme = self.page("README.md")
        listed = set()
        para = readme[readme.index("Every KES route is served"):]
        para = para[:para.index("\n\n")]
        for route in re.findall(r"`(/[^`]+)`", para):
            m = re.match(r"^(.*)\{([^}]*)\}(.*)$", route)
            if m:
                listed |= {m.group(1) + part + m.group(3) for part in m.group(2).split(",")}
            else:
                listed.add(route)
        _, out, _ = self.kesc("status", "--api", "--json")
        served = {api["path"] for api in json.loads(out)}
        self.assertGreaterEqual(len(listed), 18, listed)
        self.assertEqual(listed - served, set())
        self.assertEqual(served - listed, set())


def files_of(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


class MigrateCase(unittest.TestCase):
    """Two servers prepared by kesctest with fs keystores in dirs of this test (src, dst):
    their config files are what `kesc migrate` reads; they run only when a test needs them."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kesc-migrate-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.src = os.path.join(self.dir, "src")
        self.dst = os.path.join(self.dir, "dst")
        os.mkdir(self.src)
        os.mkdir(self.dst)
        self.src_srv = start_server(keystore={"fs": {"path": self.src}}, start=False)
        self.addCleanup(self.src_srv.cleanup)
        self.dst_srv = start_server(keystore={"fs": {"path": self.dst}}, start=False)
        self.addCleanup(self.dst_srv.cleanup)
        self.src_cfg = self.src_srv.config_path
        self.dst_cfg = self.dst_srv.config_path

    def client(self, server, *args):
        env = clean_env(**server.cli_env("admin"))
        rc, out, err = run(list(args), env=env)
        self.assertEqual(rc, 0, err)
        return out

    def config_for(self, server, keystore):
        """A config like server's, with another keystore section."""
        cfg = server.config_dict()
        cfg["keystore"] = keystore
        path = os.path.join(self.dir, "other.yml")
        with open(path, "w") as f:
            f.write(kesctest.to_yaml(cfg) + "\n")
        return path


class MigrateFsTest(MigrateCase):
    def test_fs_to_fs(self):
        # Keys made by a real server, so the records are what kesc writes.
        src = self.src_srv.start()
        try:
            self.client(src, "key", "create", "minio-1", "minio-2", "other")
            self.client(src, "key", "import", "minio-3", base64.b64encode(b"\x07" * 32).decode())
            dek = json.loads(self.client(src, "key", "dek", "minio-1"))
        finally:
            src.stop()

        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", self.dst_cfg, "minio-*"])
        self.assertEqual((rc, out), (0, "copied 3, skipped 0, failed 0\n"), err)
        self.assertEqual(sorted(os.listdir(self.dst)), ["minio-1", "minio-2", "minio-3"])
        src_files = files_of(self.src)
        for name, data in files_of(self.dst).items():
            self.assertEqual(data, src_files[name], name)

        # Never overwrite: the same migration again fails for every key and changes nothing.
        before = files_of(self.dst)
        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", self.dst_cfg])
        self.assertEqual((rc, out), (1, "copied 1, skipped 0, failed 3\n"))
        self.assertIn("key 'minio-1' already exists at the target", err)
        self.assertEqual(files_of(self.dst), dict(before, other=src_files["other"]))
        # --merge skips what is there: idempotent.
        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", self.dst_cfg, "--merge"])
        self.assertEqual((rc, out), (0, "copied 0, skipped 4, failed 0\n"), err)
        rc, _, err = run(["migrate", "--from", self.src_cfg, "--to", self.dst_cfg, "--force"])
        self.assertEqual(rc, 1)

        # The migrated key decrypts what the source server encrypted.
        dst = self.dst_srv.start()
        try:
            out = self.client(dst, "key", "decrypt", "minio-1", dek["ciphertext"])
            self.assertEqual(json.loads(out)["plaintext"], dek["plaintext"])
        finally:
            dst.stop()

    def test_bad_config_is_reported(self):
        with open(os.path.join(self.dir, "broken.yml"), "w") as f:
            f.write("admin:\n  identity: x\n")
        rc, out, err = run(["migrate", "--from", os.path.join(self.dir, "broken.yml"), "--to", self.dst_cfg])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("broken.yml", err)


class Vault:
    """tests/vault/vault_server.py with K/V v1, transit and an AppRole for kesc."""

    def __init__(self, directory):
        self.ready = os.path.join(directory, "vault.ready")
        self.proc = subprocess.Popen([sys.executable, VAULT_SERVER, "--listen", "127.0.0.1:0",
                                      "--ready-file", self.ready],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("vault_server.py did not start")
            time.sleep(0.02)
        with open(self.ready) as f:
            self.url, self.root = f.read().split("\n")[:2]
        self.req("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "1"}})
        self.req("POST", "/v1/sys/mounts/transit", {"type": "transit"})
        self.req("POST", "/v1/transit/keys/kesc", {})
        self.req("POST", "/v1/sys/auth/approle", {"type": "approle"})
        policy = ('path "kv/*" { capabilities = ["create", "read", "delete", "list"] }\n'
                  'path "transit/encrypt/kesc" { capabilities = ["update"] }\n'
                  'path "transit/decrypt/kesc" { capabilities = ["update"] }\n')
        self.req("PUT", "/v1/sys/policies/acl/kesc", {"policy": policy})
        self.req("POST", "/v1/auth/approle/role/kesc", {"token_policies": "kesc", "token_ttl": "1h"})
        self.role_id = self.req("GET", "/v1/auth/approle/role/kesc/role-id")["data"]["role_id"]
        self.secret_id = self.req("POST", "/v1/auth/approle/role/kesc/secret-id", {})["data"]["secret_id"]

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method,
                                   headers={"X-Vault-Token": self.root, "Content-Type": "application/json"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(r, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def list_kv(self):
        try:
            return sorted(self.req("GET", "/v1/kv?list=true")["data"]["keys"])
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    def keystore(self, transit):
        vault = {"endpoint": self.url, "engine": "kv", "version": "v1",
                 "approle": {"id": self.role_id, "secret": self.secret_id}}
        if transit:
            vault["transit"] = {"engine": "transit", "key": "kesc"}
        return {"vault": vault}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


class MigrateVaultTest(MigrateCase):
    def test_fs_to_vault_to_fs(self):
        vault = Vault(self.dir)
        self.addCleanup(vault.stop)
        src = self.src_srv.start()
        try:
            self.client(src, "key", "create", "v-1", "v-2", "v-3")
        finally:
            src.stop()
        vault_cfg = self.config_for(self.src_srv, vault.keystore(transit=True))

        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", vault_cfg])
        self.assertEqual((rc, out), (0, "copied 3, skipped 0, failed 0\n"), err)
        self.assertEqual(vault.list_kv(), ["v-1", "v-2", "v-3"])
        # Transit-wrapped in Vault: the stored value is not the record.
        stored = vault.req("GET", "/v1/kv/v-1")["data"]["v-1"]
        self.assertTrue(stored.startswith("vault:v1:"), stored)

        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", vault_cfg])
        self.assertEqual((rc, out), (1, "copied 0, skipped 0, failed 3\n"))
        self.assertIn("already exists at the target", err)
        rc, out, err = run(["migrate", "--from", self.src_cfg, "--to", vault_cfg, "--merge"])
        self.assertEqual((rc, out), (0, "copied 0, skipped 3, failed 0\n"), err)

        # And back: byte-equal records, so nothing was decrypted or re-encoded on the way.
        rc, out, err = run(["migrate", "--from", vault_cfg, "--to", self.dst_cfg])
        self.assertEqual((rc, out), (0, "copied 3, skipped 0, failed 0\n"), err)
        self.assertEqual(files_of(self.dst), files_of(self.src))


if __name__ == "__main__":
    unittest.main(verbosity=2)
