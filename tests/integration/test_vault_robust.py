"""The Vault keystore when things go wrong: K/V v1 tokens that may overwrite keys, replicas
racing creates, a slow Vault, Vault storing a key but answering 500, Vault going down and
coming back. The real `kesc server` against the Vault test server (tests/vault), over mTLS.

One Vault serves every scenario (each uses its own key names or prefix); tests that inject
faults reset them when they end.
"""

import base64
import json
import re
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402
from test_vault_e2e import Vault  # noqa: E402

# KES's K/V v1 policy: no "update", so Vault itself refuses to overwrite an existing key.
POLICY_V1 = 'path "kv/*" { capabilities = ["create", "read", "delete", "list"] }'
# The policy operators write when they copy a "read/write" example: "update" lets a write
# replace an existing key, and K/V v1 has no check-and-set.
POLICY_V1_UPDATE = 'path "kv/*" { capabilities = ["create", "read", "update", "delete", "list"] }'

VAULT = None


def setUpModule():
    global VAULT
    VAULT = Vault()
    try:
        VAULT.ok("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "1"}})
        VAULT.ok("POST", "/v1/sys/auth/approle", {"type": "approle"})
        VAULT.roles = {}
        for role, policy in (("kes", POLICY_V1), ("kes-update", POLICY_V1_UPDATE),
                             ("kes-live", POLICY_V1)):
            VAULT.ok("PUT", "/v1/sys/policies/acl/" + role, {"policy": policy})
            VAULT.ok("POST", "/v1/auth/approle/role/" + role,
                     {"token_policies": [role], "token_ttl": "1h", "token_max_ttl": "24h"})
            rid = VAULT.ok("GET", "/v1/auth/approle/role/%s/role-id" % role)["data"]["role_id"]
            sid = VAULT.ok("POST", "/v1/auth/approle/role/%s/secret-id" % role,
                           {})["data"]["secret_id"]
            VAULT.roles[role] = (rid, sid)
    except Exception:
        VAULT.stop()
        raise


def tearDownModule():
    if VAULT:
        VAULT.stop()


def keystore(role="kes", prefix="", **extra):
    rid, sid = VAULT.roles[role]
    ks = {"endpoint": VAULT.url, "engine": "kv", "version": "v1", "prefix": prefix,
          "approle": {"id": rid, "secret": sid}, "status": {"ping": "1s"}}
    ks.update(extra)
    return {"vault": ks}


def kesc(role="kes", prefix="", config=None, **extra):
    return kesctest.Server(keystore=keystore(role, prefix, **extra), config=config)


def race_creates(servers, names):
    """For each name in turn, every server creates it at the same moment (one thread per
    server, released together). Returns {name: [status per server]}."""
    out = {}
    for name in names:
        got = [None] * len(servers)
        barrier = threading.Barrier(len(servers))

        def run(i):
            try:
                barrier.wait(60)
                got[i] = servers[i].request("POST", "/v1/key/create/" + name).status
            except Exception as e:  # reported by the caller's assertions
                got[i] = repr(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        out[name] = got
    return out


def b64(b):
    return base64.b64encode(b).decode()


def start_fails(srv, timeout=60):
    """Runs `kesc server` on srv's config; returns (exit code, stderr) of a server that must
    refuse to start (a server that starts is stopped and reported)."""
    p = subprocess.Popen([kesctest.KESC_BIN, "server", "--config", srv.config_path, "--addr",
                          "127.0.0.1:0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, err.decode(errors="replace")
    return p.returncode, err.decode(errors="replace")


class VaultV1Overwrite(unittest.TestCase):
    """Issue 10 §1: K/V v1 has no check-and-set; a token that may update can overwrite."""

    def test_1_update_grant_refused_at_start(self):
        srv = kesctest.Server(keystore=keystore("kes-update", "refused"), start=False)
        try:
            code, err = start_fails(srv)
            print("  exit %r: %s" % (code, err.strip().splitlines()[-1:]), file=sys.stderr)
            self.assertIsNotNone(code, "kesc started with a token that may overwrite keys")
            self.assertNotEqual(code, 0, err)
            self.assertIn("grants 'update' on K/V v1 path 'kv/refused/", err)
            self.assertIn("keystore.vault.allow_unsafe_kv_v1_update", err)
            self.assertNotIn("listening on", err)
            self.assertNotIn(VAULT.roles["kes-update"][1], err)  # never the secret ID
        finally:
            srv.cleanup()

    def race_and_check(self, role, prefix, extra=None):
        """Two replicas race creates of 40 names (slow reads widen the window between "not
        found" and the write, as a loaded Vault does); returns {name: [status, status]} and
        the DEK each acknowledging replica generated."""
        VAULT.ok("POST", "/_test/latency", {"ms": 300, "path_prefix": "/v1/kv/", "method": "GET"})
        try:
            with kesc(role, prefix, **(extra or {})) as a, \
                    kesc(role, prefix, **(extra or {})) as b:
                names = ["race-%03d" % i for i in range(40)]
                res = race_creates([a, b], names)
                deks = {}
                for n, st in res.items():
                    for srv, code in zip((a, b), st):
                        if code == 200:
                            r = srv.request("POST", "/v1/key/generate/" + n, {"context": b64(b"x")})
                            self.assertEqual(r.status, 200, (n, r))
                            deks.setdefault(n, []).append(r.json())
        finally:
            VAULT.ok("POST", "/_test/reset-faults")
        return res, deks

    def test_2_replicas_race_without_update_grant(self):
        """KES's policy: exactly one replica wins each name, the other hears "already exists",
        and the winner's key is the one in Vault (a third server decrypts its DEKs)."""
        res, deks = self.race_and_check("kes", "race")
        doubled = sorted(n for n, st in res.items() if st == [200, 200])
        print("  %d of %d names acknowledged by both replicas" % (len(doubled), len(res)),
              file=sys.stderr)
        self.assertEqual(doubled, [])
        for n, st in res.items():
            self.assertEqual(sorted(st), [200, 400], (n, st))
        with kesc("kes", "race") as c:
            for n, ds in sorted(deks.items()):
                for d in ds:
                    r = c.request("POST", "/v1/key/decrypt/" + n,
                                  {"ciphertext": d["ciphertext"], "context": b64(b"x")})
                    self.assertEqual(r.status, 200, (n, r))
                    self.assertEqual(r.json()["plaintext"], d["plaintext"], n)

    def test_3_update_grant_with_opt_in(self):
        """The operator accepts the risk explicitly: kesc starts and says what it means."""
        with kesc("kes-update", "opt-in", allow_unsafe_kv_v1_update=True) as srv:
            self.assertEqual(srv.request("POST", "/v1/key/create/opted").status, 200)
            err = srv.stderr_text()
            self.assertIn("allow_unsafe_kv_v1_update is set", err)
            self.assertIn("can silently replace each other's key", err)

    def test_4_policy_gains_update_while_running(self):
        """A policy change applies to a live token at once: the next create asks again and is
        refused; after the next login the log says so even without a create."""
        try:
            with kesc("kes-live", "live") as srv:
                self.assertEqual(srv.request("POST", "/v1/key/create/before").status, 200)
                VAULT.ok("PUT", "/v1/sys/policies/acl/kes-live", {"policy": POLICY_V1_UPDATE})
                r = srv.request("POST", "/v1/key/create/after")
                self.assertEqual((r.status, r.message), (502, "failed to create key"))
                srv.wait_stderr(re.escape("grants 'update' on K/V v1 path 'kv/live/after'"))
                g = srv.request("POST", "/v1/key/generate/before", {"context": b64(b"x")})
                self.assertEqual(g.status, 200, g)  # reads go on
                status, _ = VAULT.call("GET", "/v1/kv/live/after")
                self.assertEqual(status, 404)  # nothing was written
                VAULT.ok("POST", "/_test/expire-tokens")
                self.assertEqual(srv.request("GET", "/v1/key/list/").status, 200)  # re-login
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and "kesc-capability-probe" not in \
                        srv.stderr_text():
                    time.sleep(0.1)
                self.assertIn("grants 'update' on K/V v1 path 'kv/live/kesc-capability-probe'",
                              srv.stderr_text())
                VAULT.ok("PUT", "/v1/sys/policies/acl/kes-live", {"policy": POLICY_V1})
                self.assertEqual(srv.request("POST", "/v1/key/create/after").status, 200)
        finally:
            VAULT.ok("PUT", "/v1/sys/policies/acl/kes-live", {"policy": POLICY_V1})


class SlowVault(unittest.TestCase):
    """Issue 10 §3 (slow Vault) and §4/§5 (transport settings, one log line per change)."""

    def tearDown(self):
        VAULT.ok("POST", "/_test/reset-faults")

    def test_1_create_outliving_its_deadline_is_answered_504(self):
        """Vault stores the key but answers after the route's deadline: the client gets
        KES's timeout answer (not a dropped connection), and the log says what happened."""
        api = {"api": {"/v1/key/create/": {"timeout": "2s"}}}
        with kesc("kes", "slow", config=api, request_timeout="30s") as srv:
            VAULT.ok("POST", "/_test/latency", {"ms": 5000, "path_prefix": "/v1/kv/slow/",
                                               "method": "PUT"})
            t0 = time.monotonic()
            r = srv.request("POST", "/v1/key/create/late")
            took = time.monotonic() - t0
            self.assertEqual((r.status, r.message), (504, "request timeout exceeded"))
            self.assertEqual(r.headers.get("connection"), "close")
            self.assertLess(took, 4.5, "answered only when Vault did")
            srv.wait_stderr(re.escape("POST /v1/key/create/late from 127.0.0.1: no result "
                                      "within the route's timeout"))
            # The worker finishes when Vault answers; its outcome is logged, not sent.
            srv.wait_stderr(r"create/late from 127\.0\.0\.1: finished after its 504 answer, "
                            r"\d+ ms after it began, with status 200")
            deadline = time.monotonic() + 15
            while True:
                audit = [a for a in srv.audit_lines() if "/v1/key/create/late" in json.dumps(a)]
                if audit or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(len(audit), 1, audit)
            self.assertIn("504", json.dumps(audit[0]))
            VAULT.ok("POST", "/_test/reset-faults")
            status, _ = VAULT.call("GET", "/v1/kv/slow/late")
            self.assertEqual(status, 200)  # Vault did store it
            r = srv.request("POST", "/v1/key/create/late")
            self.assertEqual((r.status, r.message), (400, "key already exists"))
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)  # still serving
            self.assertEqual(srv.sanitizer_report(), "", srv.stderr_text()[-3000:])

    def test_2_stored_but_answered_500_is_a_success(self):
        """Every attempt of the write is stored and answered 500: the create read back its
        own key, so it succeeded."""
        with kesc("kes", "ambiguous") as srv:
            VAULT.ok("POST", "/_test/fail", {"count": 3, "status": 500, "method": "PUT",
                                             "after": True, "path_prefix": "/v1/kv/ambiguous/"})
            r = srv.request("POST", "/v1/key/create/stored")
            self.assertEqual(r.status, 200, r)
            srv.wait_stderr("read back: the key was stored, create succeeded")
            g = srv.request("POST", "/v1/key/generate/stored", {"context": b64(b"x")})
            self.assertEqual(g.status, 200, g)
        with kesc("kes", "ambiguous") as srv:  # a cold cache: the key in Vault is that key
            r = srv.request("POST", "/v1/key/decrypt/stored",
                            {"ciphertext": g.json()["ciphertext"], "context": b64(b"x")})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["plaintext"], g.json()["plaintext"])

    def test_3_recovers_as_soon_as_vault_does(self):
        """A stall longer than the request timeout: kesc fails fast while Vault is down, then
        serves again within about a second of Vault's recovery, although probes sent during
        the stall are still waiting. The episode is one log line down and one up, however
        often it was probed."""
        with kesc("kes", "episode", request_timeout="8s", max_retries=0) as srv:
            self.assertEqual(srv.request("POST", "/v1/key/create/before").status, 200)
            VAULT.ok("POST", "/_test/latency", {"ms": 20000})
            t0 = time.monotonic()
            fast_fail = None
            while time.monotonic() - t0 < 30:
                t = time.monotonic()
                r = srv.request("POST", "/v1/key/create/during-%d" % int(t * 1000))
                if r.status != 200 and time.monotonic() - t < 1.0:
                    fast_fail = r
                    break
                time.sleep(0.2)
            self.assertIsNotNone(fast_fail, "creates never failed fast during the stall")
            self.assertIn(fast_fail.status, (502, 504))
            for _ in range(8):  # readiness probes while down: no line each
                self.assertNotEqual(srv.request("GET", "/v1/ready").status, 200)
                time.sleep(0.3)
            VAULT.ok("POST", "/_test/latency", {"ms": 0})
            healed = time.monotonic()
            while time.monotonic() - healed < 20:
                r = srv.request("POST", "/v1/key/create/after-%d" % int(time.monotonic() * 1000))
                if r.status == 200:
                    break
                time.sleep(0.1)
            recovery = time.monotonic() - healed
            print("  creates work again %.2f s after Vault recovered" % recovery, file=sys.stderr)
            self.assertEqual(r.status, 200)
            self.assertLess(recovery, 4.0)
            err = srv.stderr_text()
            self.assertEqual(err.count("vault: unreachable:"), 1, err[-3000:])
            self.assertEqual(err.count("vault: reachable again"), 1, err[-3000:])
            self.assertLessEqual(err.count("key store status: unreachable"), 2, err[-3000:])

    def test_4_transport_settings_are_used(self):
        """request_timeout bounds one attempt, and a timed-out attempt is not repeated."""
        with kesc("kes", "transport", request_timeout="1s", max_retries=3) as srv:
            VAULT.ok("POST", "/_test/latency", {"ms": 3000, "path_prefix": "/v1/kv/transport/",
                                               "method": "GET"})
            VAULT.ok("POST", "/_test/stats/reset")
            t0 = time.monotonic()
            r = srv.request("POST", "/v1/key/create/slowread")
            took = time.monotonic() - t0
            self.assertEqual(r.status, 502, r)
            self.assertLess(took, 2.9, "the 1 s request timeout was not applied")
            reads = VAULT.stats()["by_path"].get("GET /v1/kv/transport/slowread")
            self.assertEqual(reads, 1)  # not retried after its timeout
            VAULT.ok("POST", "/_test/reset-faults")
            VAULT.ok("POST", "/_test/fail", {"count": 3, "status": 502,
                                             "path_prefix": "/v1/kv/transport/"})
            r = srv.request("POST", "/v1/key/create/retried")  # 3 retries absorb 3 failures
            self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
