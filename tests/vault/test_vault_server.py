#!/usr/bin/env python3
"""Self-test of tests/vault/vault_server.py: drives the server as a subprocess over HTTP(S)
and checks the behaviour a Vault client depends on (bodies and status codes from
vault-api.md). Standard library only; every server is killed even when a test fails."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "vault_server.py")

DENIED = "1 error occurred:\n\t* permission denied\n\n"
INVALID_TOKEN = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"


class Sim:
    """One vault_server.py subprocess on an ephemeral loopback port."""

    def __init__(self, *extra, root_token=None, tls=None):
        self.dir = tempfile.mkdtemp(prefix="vaultsim-")
        self.ready = os.path.join(self.dir, "ready")
        self.log = os.path.join(self.dir, "log")
        args = [sys.executable, SERVER, "--listen", "127.0.0.1:0", "--ready-file", self.ready, "--log", self.log]
        if root_token:
            args += ["--root-token", root_token]
        args += list(extra)
        self.tls = tls
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                out, err = self.proc.communicate(timeout=5) if self.proc.poll() is not None else (b"", b"")
                self.stop()
                raise RuntimeError("vault_server did not start: %r" % err)
            time.sleep(0.02)
        with open(self.ready) as f:
            lines = f.read().split("\n")
        self.url, self.root = lines[0], lines[1]
        scheme, rest = self.url.split("://")
        self.host, port = rest.rsplit(":", 1)
        self.port = int(port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def conn(self, timeout=10):
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def req(self, method, path, body=None, token="<root>", headers=None, raw=None):
        """Returns (status, headers, raw body bytes, parsed JSON or None)."""
        hdrs = dict(headers or {})
        if token == "<root>":
            token = self.root
        if token:
            hdrs["X-Vault-Token"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        c = self.conn()
        try:
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            out = r.read()
            parsed = json.loads(out) if out.strip() else None
            return r.status, r.headers, out, parsed
        finally:
            c.close()

    # shortcuts used throughout
    def mount(self, path, mtype, version=None, ns=None):
        body = {"type": mtype}
        if version:
            body["options"] = {"version": version}
        st, _, raw, _ = self.req("POST", "/v1/sys/mounts/" + path, body, headers=_ns(ns))
        assert st == 204, (st, raw)

    def policy(self, name, text, ns=None):
        st, _, raw, _ = self.req("PUT", "/v1/sys/policies/acl/" + name, {"policy": text}, headers=_ns(ns))
        assert st == 204, (st, raw)

    def token(self, ns=None, **params):
        st, _, raw, js = self.req("POST", "/v1/auth/token/create", params, headers=_ns(ns))
        assert st == 200, (st, raw)
        return js["auth"]["client_token"]

    def control(self, path, body=None, token="<root>"):
        return self.req("POST", "/_test/" + path, body or {}, token=token)


def _ns(ns):
    return {"X-Vault-Namespace": ns} if ns else {}


class SimCase(unittest.TestCase):
    """A fresh server per test: tests may seal it, inject faults or expire tokens."""

    server_args = ()

    def setUp(self):
        self.v = Sim(*self.server_args)
        self.addCleanup(self.v.stop)

    def assertError(self, resp, status, errors):
        st, hdr, raw, js = resp
        self.assertEqual(st, status, raw)
        self.assertEqual(js, {"errors": errors}, raw)
        self.assertEqual(hdr["Content-Type"], "application/json")


# --------------------------------------------------------------------------------------
class CommandLineTest(unittest.TestCase):
    def test_ready_file_has_url_and_given_root_token(self):
        v = Sim(root_token="s3cret-root")
        try:
            self.assertRegex(v.url, r"^http://127\.0\.0\.1:\d+$")
            self.assertEqual(v.root, "s3cret-root")
            with open(v.ready) as f:
                self.assertEqual(f.read(), v.url + "\ns3cret-root\n")
            st, _, _, js = v.req("GET", "/v1/auth/token/lookup-self")
            self.assertEqual(st, 200)
            self.assertEqual(js["data"]["policies"], ["root"])
        finally:
            v.stop()

    def test_default_root_token_is_random_hvs(self):
        a, b = Sim(), Sim()
        try:
            self.assertTrue(a.root.startswith("hvs."))
            self.assertNotEqual(a.root, b.root)
            self.assertEqual(a.req("GET", "/v1/auth/token/lookup-self")[0], 200)
        finally:
            a.stop()
            b.stop()

    def test_refuses_non_loopback(self):
        d = tempfile.mkdtemp()
        try:
            p = subprocess.run([sys.executable, SERVER, "--listen", "0.0.0.0:0", "--ready-file",
                                os.path.join(d, "r")], capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"loopback", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "r")))
        finally:
            shutil.rmtree(d)

    def test_sigterm_and_sigint_exit_cleanly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            v = Sim()
            try:
                v.proc.send_signal(sig)
                self.assertEqual(v.proc.wait(timeout=10), 0)
                with self.assertRaises(OSError):
                    socket.create_connection((v.host, v.port), timeout=2).close()
            finally:
                v.stop()

    def test_sigterm_with_open_keepalive_connection(self):
        v = Sim()
        try:
            c = v.conn()
            c.request("GET", "/v1/sys/health")
            c.getresponse().read()  # the connection stays open (HTTP/1.1 keep-alive)
            v.proc.send_signal(signal.SIGTERM)
            self.assertEqual(v.proc.wait(timeout=10), 0)
            c.close()
        finally:
            v.stop()

    def test_log_has_requests_but_no_tokens(self):
        v = Sim(root_token="hvs.SECRETROOT")
        try:
            v.req("GET", "/v1/auth/token/lookup-self")
            with open(v.log) as f:
                log = f.read()
            self.assertIn("GET /v1/auth/token/lookup-self 200", log)
            self.assertNotIn("SECRETROOT", log)
        finally:
            v.stop()


# --------------------------------------------------------------------------------------
class HttpBehaviourTest(SimCase):
    def test_envelope_fields_order_and_headers(self):
        self.v.mount("kv", "kv", "1")
        self.v.req("PUT", "/v1/kv/a", {"x": "1"})
        st, hdr, raw, js = self.v.req("GET", "/v1/kv/a")
        self.assertEqual(st, 200)
        self.assertEqual(list(js), ["request_id", "lease_id", "renewable", "lease_duration", "data",
                                    "wrap_info", "warnings", "auth", "mount_type"])
        self.assertRegex(js["request_id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertEqual(hdr["Cache-Control"], "no-store")
        self.assertEqual(hdr["Content-Type"], "application/json")
        self.assertTrue(raw.endswith(b"}\n"))
        self.assertNotIn(b" ", raw)  # compact, as Go's encoder
        self.assertIsNone(js["wrap_info"])
        self.assertIsNone(js["auth"])

    def test_concurrent_clients(self):
        self.v.mount("kv", "kv", "2")
        failures = []

        def work(i):
            try:
                for j in range(20):
                    st = self.v.req("POST", "/v1/kv/data/c%d" % i, {"data": {"j": j}})[0]
                    if st != 200:
                        failures.append(st)
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(repr(e))
        threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(failures, [])
        for i in (0, 23):
            self.assertEqual(self.v.req("GET", "/v1/kv/metadata/c%d" % i)[3]["data"]["current_version"], 20)

    def test_outside_v1_is_404_empty_errors(self):
        self.assertError(self.v.req("GET", "/v2/kv/a"), 404, [])

    def test_unknown_method_is_405(self):
        self.assertError(self.v.req("BREW", "/v1/sys/mounts"), 405, [])

    def test_malformed_json_is_400(self):
        self.v.mount("kv", "kv", "1")
        self.assertError(self.v.req("PUT", "/v1/kv/a", raw=b"{not json"), 400, ["error parsing JSON"])
        self.assertError(self.v.req("PUT", "/v1/kv/a", raw=b"[1,2]"), 400, ["error parsing JSON"])

    def test_missing_and_invalid_token(self):
        self.v.mount("kv", "kv", "1")
        self.assertError(self.v.req("GET", "/v1/kv/a", token=None), 403, ["permission denied"])
        self.assertError(self.v.req("GET", "/v1/kv/a", token="hvs.nope"), 403, [INVALID_TOKEN])

    def test_bearer_authorization_header(self):
        st, _, _, js = self.v.req("GET", "/v1/auth/token/lookup-self", token=None,
                                  headers={"Authorization": "Bearer " + self.v.root})
        self.assertEqual(st, 200)
        self.assertEqual(js["data"]["id"], self.v.root)

    def test_unmounted_path_root_vs_policy_token(self):
        self.assertError(self.v.req("GET", "/v1/nosuch/foo"), 404,
                         ['no handler for route "nosuch/foo". route entry not found.'])
        tok = self.v.token(policies=["default"])
        self.assertError(self.v.req("GET", "/v1/nosuch/foo", token=tok), 403, [DENIED])

    def test_write_to_trailing_slash_is_400(self):
        self.v.mount("kv", "kv", "1")
        self.assertError(self.v.req("PUT", "/v1/kv/dir/", {"a": "b"}), 400,
                         ["cannot write to a path ending in '/'"])

    def test_patch_needs_merge_patch_content_type(self):
        self.v.mount("kv", "kv", "2")
        self.assertError(self.v.req("PATCH", "/v1/kv/data/a", {"data": {}}), 415,
                         ["PATCH requires Content-Type of application/merge-patch+json, provided application/json"])

    def test_invalid_list_value_is_400(self):
        self.v.mount("kv", "kv", "1")
        self.assertError(self.v.req("GET", "/v1/kv/?list=maybe"), 400, [])

    def test_unsupported_operation_and_path(self):
        self.v.mount("transit", "transit")
        self.assertError(self.v.req("DELETE", "/v1/transit/encrypt/k"), 405,
                         ["1 error occurred:\n\t* unsupported operation\n\n"])
        self.assertError(self.v.req("GET", "/v1/transit/nothing/here"), 404,
                         ["1 error occurred:\n\t* unsupported path\n\n"])


# --------------------------------------------------------------------------------------
class HealthSealTest(SimCase):
    def test_health_body_and_codes(self):
        st, _, _, js = self.v.req("GET", "/v1/sys/health", token=None)
        self.assertEqual(st, 200)
        for k in ("initialized", "sealed", "standby", "server_time_utc", "version", "cluster_name", "cluster_id",
                  "replication_dr_mode", "replication_performance_mode", "performance_standby"):
            self.assertIn(k, js)
        self.assertEqual((js["initialized"], js["sealed"], js["standby"]), (True, False, False))
        self.assertEqual(list(js), sorted(js))
        self.assertEqual(self.v.req("GET", "/v1/sys/health?activecode=299&standbyok=true", token=None)[0], 299)
        self.assertError(self.v.req("GET", "/v1/sys/health?sealedcode=abc", token=None), 400, [])
        st, _, raw, _ = self.v.req("HEAD", "/v1/sys/health", token=None)
        self.assertEqual((st, raw), (200, b""))
        self.assertError(self.v.req("POST", "/v1/sys/health", {}), 405, [])
        # root-only path: a namespace header is refused as Vault Enterprise does (vault#14934)
        self.assertError(self.v.req("GET", "/v1/sys/health", token=None, headers={"X-Vault-Namespace": "ns1"}),
                         404, ["unsupported path"])

    def test_seal_status(self):
        st, _, _, js = self.v.req("GET", "/v1/sys/seal-status", token=None)
        self.assertEqual(st, 200)
        self.assertEqual((js["sealed"], js["initialized"], js["type"]), (False, True, "shamir"))
        self.assertIn("cluster_id", js)

    def test_sealed_mode(self):
        self.v.mount("kv", "kv", "1")
        self.v.req("PUT", "/v1/kv/a", {"x": "1"})
        tok = self.v.token(policies=["default"])
        self.assertEqual(self.v.control("seal")[0], 204)
        self.assertError(self.v.req("GET", "/v1/kv/a"), 503, ["Vault is sealed"])
        self.assertError(self.v.req("POST", "/v1/auth/approle/login", {"role_id": "x"}, token=None),
                         503, ["Vault is sealed"])
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok), 503, ["Vault is sealed"])
        st, _, _, js = self.v.req("GET", "/v1/sys/health", token=None)
        self.assertEqual(st, 503)
        self.assertTrue(js["sealed"])
        self.assertNotIn("cluster_id", js)
        self.assertEqual(self.v.req("GET", "/v1/sys/health?sealedcode=299", token=None)[0], 299)
        self.assertTrue(self.v.req("GET", "/v1/sys/seal-status", token=None)[3]["sealed"])
        self.assertEqual(self.v.control("unseal")[0], 204)
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[3]["data"], {"x": "1"})
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)

    def test_sys_seal_needs_sudo(self):
        tok = self.v.token(policies=["default"])
        self.assertError(self.v.req("PUT", "/v1/sys/seal", token=tok), 403, [DENIED])
        self.assertEqual(self.v.req("PUT", "/v1/sys/seal")[0], 204)
        self.assertTrue(self.v.req("GET", "/v1/sys/seal-status", token=None)[3]["sealed"])
        self.assertError(self.v.req("PUT", "/v1/sys/seal"), 503, ["Vault is sealed"])


# --------------------------------------------------------------------------------------
class MountsPoliciesTest(SimCase):
    def test_mount_table(self):
        self.v.mount("secret", "kv", "2")
        self.v.mount("old", "kv")
        st, _, _, js = self.v.req("GET", "/v1/sys/mounts")
        self.assertEqual(st, 200)
        self.assertEqual(js["data"]["secret/"]["options"], {"version": "2"})
        self.assertEqual(js["data"]["old/"]["options"], {"version": "1"})
        self.assertEqual(js["secret/"]["type"], "kv")  # injected at the top level
        self.assertError(self.v.req("POST", "/v1/sys/mounts/secret", {"type": "kv"}), 400,
                         ["path is already in use at secret/"])
        self.assertError(self.v.req("POST", "/v1/sys/mounts/x", {"type": "nope"}), 400,
                         ["plugin not found in the catalog: nope"])
        st, _, _, js = self.v.req("GET", "/v1/sys/internal/ui/mounts/secret/a/b")
        self.assertEqual((js["data"]["path"], js["data"]["options"]["version"]), ("secret/", "2"))
        self.assertEqual(self.v.req("DELETE", "/v1/sys/mounts/old")[0], 204)
        self.assertNotIn("old/", self.v.req("GET", "/v1/sys/mounts")[3]["data"])

    def test_auth_mounts(self):
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/approle", {"type": "approle"})[0], 204)
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/k8s", {"type": "kubernetes"})[0], 204)
        js = self.v.req("GET", "/v1/sys/auth")[3]
        self.assertEqual(js["data"]["approle/"]["type"], "approle")
        self.assertEqual(js["data"]["k8s/"]["type"], "kubernetes")
        self.assertEqual(js["data"]["token/"]["type"], "token")

    def test_preflight_without_access(self):
        self.v.mount("secret", "kv", "2")
        self.v.mount("other", "kv", "2")
        self.v.policy("p", 'path "secret/data/*" { capabilities = ["read"] }')
        tok = self.v.token(policies=["p"])
        self.assertEqual(self.v.req("GET", "/v1/sys/internal/ui/mounts/secret/x", token=tok)[0], 200)
        self.assertError(self.v.req("GET", "/v1/sys/internal/ui/mounts/other/x", token=tok), 403,
                         ['preflight capability check returned 403, please ensure client\'s policies grant '
                          'access to path "other/x/"'])

    def test_policy_endpoints(self):
        text = 'path "kv/*" {\n  capabilities = ["read", "list"]\n}\n'
        self.v.policy("Reader", text)
        st, _, _, js = self.v.req("GET", "/v1/sys/policies/acl/reader")
        self.assertEqual(js["data"], {"name": "reader", "policy": text})
        js = self.v.req("GET", "/v1/sys/policy/reader")[3]
        self.assertEqual((js["name"], js["rules"]), ("reader", text))
        js = self.v.req("GET", "/v1/sys/policy")[3]
        self.assertEqual(js["policies"], ["default", "reader", "root"])
        js = self.v.req("LIST", "/v1/sys/policies/acl")[3]
        self.assertEqual(js["data"]["keys"], ["default", "reader", "root"])
        self.assertError(self.v.req("DELETE", "/v1/sys/policy/root"), 400, ['cannot delete "root" policy'])
        self.assertError(self.v.req("PUT", "/v1/sys/policy/root", {"policy": text}), 400,
                         ['cannot update "root" policy'])
        self.assertError(self.v.req("PUT", "/v1/sys/policy/bad", {"policy": 'path "x" { capabilities = ["fly"] }'}),
                         400, ['failed to parse policy: path "x": invalid capability "fly"'])
        self.assertEqual(self.v.req("POST", "/v1/sys/policy/legacy", {"rules": text})[0], 204)
        self.assertEqual(self.v.req("DELETE", "/v1/sys/policies/acl/reader")[0], 204)
        self.assertEqual(self.v.req("DELETE", "/v1/sys/policies/acl/reader")[0], 204)  # idempotent
        self.assertEqual(self.v.req("GET", "/v1/sys/policies/acl/reader")[0], 404)


# --------------------------------------------------------------------------------------
class ACLTest(SimCase):
    def setUp(self):
        super().setUp()
        self.v.mount("kv", "kv", "2")
        self.v.req("POST", "/v1/kv/data/app/a", {"data": {"v": "1"}})
        self.v.req("POST", "/v1/kv/data/team/x/secret", {"data": {"v": "1"}})

    def test_read_only_policy_denies_write_with_exact_body(self):
        self.v.policy("ro", 'path "kv/data/*" { capabilities = ["read"] }')
        tok = self.v.token(policies=["ro"])
        self.assertEqual(self.v.req("GET", "/v1/kv/data/app/a", token=tok)[0], 200)
        self.assertError(self.v.req("POST", "/v1/kv/data/app/a", {"data": {}}, token=tok), 403, [DENIED])
        self.assertError(self.v.req("LIST", "/v1/kv/metadata/app", token=tok), 403, [DENIED])
        self.assertError(self.v.req("DELETE", "/v1/kv/metadata/app/a", token=tok), 403, [DENIED])

    def test_create_vs_update_by_existence(self):
        self.v.policy("c", 'path "kv/data/*" { capabilities = ["create"] }')
        tok = self.v.token(policies=["c"])
        self.assertEqual(self.v.req("POST", "/v1/kv/data/new", {"data": {"a": "b"}}, token=tok)[0], 200)
        self.assertError(self.v.req("POST", "/v1/kv/data/new", {"data": {"a": "c"}}, token=tok), 403, [DENIED])
        self.v.policy("u", 'path "kv/data/*" { capabilities = ["update"] }')
        tok2 = self.v.token(policies=["u"])
        self.assertEqual(self.v.req("POST", "/v1/kv/data/new", {"data": {"a": "c"}}, token=tok2)[0], 200)
        self.assertError(self.v.req("POST", "/v1/kv/data/other", {"data": {}}, token=tok2), 403, [DENIED])

    def test_deny_wins_and_plus_wildcard_and_priority(self):
        self.v.policy("p", '''
            # comment
            path "kv/data/*" { capabilities = ["read", "create", "update"] }
            path "kv/data/team/+/secret" { capabilities = ["deny"] }
            path "kv/data/app/a" { capabilities = ["read", "deny"] }
            path "kv/metadata/*" { capabilities = ["list"] }
        ''')
        tok = self.v.token(policies=["p"])
        self.assertError(self.v.req("GET", "/v1/kv/data/team/x/secret", token=tok), 403, [DENIED])
        self.assertError(self.v.req("GET", "/v1/kv/data/app/a", token=tok), 403, [DENIED])
        self.v.req("POST", "/v1/kv/data/team/x/other", {"data": {"v": "1"}})
        self.assertEqual(self.v.req("GET", "/v1/kv/data/team/x/other", token=tok)[0], 200)
        st, _, _, js = self.v.req("GET", "/v1/kv/metadata/team/?list=true", token=tok)
        self.assertEqual((st, js["data"]["keys"]), (200, ["x/"]))

    def test_policy_change_applies_to_existing_token(self):
        self.v.policy("p", 'path "kv/data/app/*" { capabilities = ["read"] }')
        tok = self.v.token(policies=["p"])
        self.assertEqual(self.v.req("GET", "/v1/kv/data/app/a", token=tok)[0], 200)
        self.v.policy("p", 'path "kv/data/other/*" { capabilities = ["read"] }')
        self.assertError(self.v.req("GET", "/v1/kv/data/app/a", token=tok), 403, [DENIED])
        self.v.req("DELETE", "/v1/sys/policy/p")
        self.assertError(self.v.req("GET", "/v1/kv/data/app/a", token=tok), 403, [DENIED])

    def test_json_policy_and_base64_policy(self):
        pol = json.dumps({"path": {"kv/data/app/*": {"capabilities": ["read"]}}})
        self.v.policy("j", base64.b64encode(pol.encode()).decode())
        tok = self.v.token(policies=["j"])
        self.assertEqual(self.v.req("GET", "/v1/kv/data/app/a", token=tok)[0], 200)

    def test_sys_requires_policy_and_sudo(self):
        tok = self.v.token(policies=["default"])
        self.assertError(self.v.req("GET", "/v1/sys/mounts", token=tok), 403, [DENIED])
        self.v.policy("ops", 'path "sys/auth/*" { capabilities = ["create", "update"] }')
        tok = self.v.token(policies=["ops"])
        self.assertError(self.v.req("POST", "/v1/sys/auth/approle", {"type": "approle"}, token=tok), 403, [DENIED])
        self.v.policy("ops", 'path "sys/auth/*" { capabilities = ["create", "update", "sudo"] }')
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/approle", {"type": "approle"}, token=tok)[0], 204)

    def test_capabilities_self(self):
        self.v.policy("p", 'path "kv/data/*" { capabilities = ["read", "list"] }')
        tok = self.v.token(policies=["p"])
        js = self.v.req("POST", "/v1/sys/capabilities-self", {"paths": ["kv/data/x"]}, token=tok)[3]
        self.assertEqual(js["data"]["capabilities"], ["list", "read"])

    def test_capabilities_self_like_vault(self):
        """sys/capabilities-self as Vault's handleCapabilities answers it (what kesc asks
        before it trusts a K/V v1 mount not to let its token overwrite keys)."""
        self.v.mount("kv1", "kv", "1")
        self.v.policy("p", '''
            path "kv1/keys/*" { capabilities = ["create", "read", "delete", "list"] }
            path "kv1/keys/shared-*" { capabilities = ["create", "read", "update"] }
            path "kv1/keys/locked" { capabilities = ["read", "deny"] }
            path "kv1/dir" { capabilities = ["list"] }
        ''')
        tok = self.v.token(policies=["p"])

        def caps(body, token=tok, headers=None):
            st, _, _, js = self.v.req("POST", "/v1/sys/capabilities-self", body, token=token, headers=headers)
            self.assertEqual(st, 200, js)
            return js

        js = caps({"paths": ["kv1/keys/a", "kv1/keys/shared-a", "kv1/keys/locked", "kv2/x", "kv1/dir/"]})
        want = {"kv1/keys/a": ["create", "delete", "list", "read"],
                "kv1/keys/shared-a": ["create", "read", "update"],
                "kv1/keys/locked": ["deny"], "kv2/x": ["deny"],
                "kv1/dir/": ["list"]}  # asked as a list operation: the exact rule covers "dir/"
        self.assertEqual(js["data"], want)
        self.assertNotIn("capabilities", js["data"])  # only for a single path
        self.assertEqual({k: js[k] for k in want}, want)  # copied to the top level
        # A comma string is a list of paths (TypeCommaStringSlice); "path" is the old name.
        self.assertEqual(caps({"paths": "kv1/keys/a, kv1/keys/shared-b"})["data"],
                         {"kv1/keys/a": want["kv1/keys/a"], "kv1/keys/shared-b": want["kv1/keys/shared-a"]})
        js = caps({"path": "kv1/keys/shared-z"})
        self.assertEqual(js["data"]["capabilities"], ["create", "read", "update"])
        self.assertEqual(js["capabilities"], ["create", "read", "update"])
        # Capabilities do not depend on whether the entry exists.
        self.v.req("PUT", "/v1/kv1/keys/a", {"a": "1"})
        self.assertEqual(caps({"paths": ["kv1/keys/a"]})["data"]["capabilities"], want["kv1/keys/a"])
        self.assertEqual(caps({"paths": ["kv1/keys/a"]}, token=self.v.root)["data"]["capabilities"], ["root"])
        for bad in ({}, {"paths": []}, {"paths": ""}, {"paths": " , "}):
            self.assertError(self.v.req("POST", "/v1/sys/capabilities-self", bad, token=tok), 400,
                             ["paths must be supplied"])
        # The default policy grants sys/capabilities-self; without it the call is denied.
        bare = self.v.token(policies=["p"], no_default_policy=True)
        self.assertError(self.v.req("POST", "/v1/sys/capabilities-self", {"paths": ["kv1/keys/a"]}, token=bare),
                         403, [DENIED])

    def test_capabilities_self_in_a_child_namespace(self):
        """A token of the root namespace asks in its own namespace about a child's paths;
        in the child, its default policy (a root-namespace policy) does not apply."""
        self.v.req("POST", "/v1/sys/namespaces/t1", {})
        self.v.mount("kv", "kv", "1", ns="t1")
        self.v.policy("p", 'path "t1/kv/*" { capabilities = ["create", "read"] }')
        tok = self.v.token(policies=["p"])
        st, _, _, js = self.v.req("POST", "/v1/sys/capabilities-self", {"paths": ["t1/kv/x"]}, token=tok)
        self.assertEqual((st, js["data"]["capabilities"]), (200, ["create", "read"]))
        self.assertError(self.v.req("POST", "/v1/sys/capabilities-self", {"paths": ["kv/x"]}, token=tok,
                                    headers=_ns("t1")), 403, [DENIED])
        child = self.v.token(ns="t1", policies=["default"])
        st, _, _, js = self.v.req("POST", "/v1/sys/capabilities-self", {"paths": ["kv/x"]}, token=child,
                                  headers=_ns("t1"))
        self.assertEqual((st, js["data"]["capabilities"]), (200, ["deny"]))


# --------------------------------------------------------------------------------------
class KVv1Test(SimCase):
    def setUp(self):
        super().setUp()
        self.v.mount("kv", "kv", "1")

    def test_write_read_list_delete(self):
        st, _, raw, _ = self.v.req("PUT", "/v1/kv/app/key1", {"key1": "value", "n": 3})
        self.assertEqual((st, raw), (204, b""))
        self.v.req("POST", "/v1/kv/app/sub/key2", {"x": "y", "ttl": "1h"})
        st, _, _, js = self.v.req("GET", "/v1/kv/app/key1")
        self.assertEqual((st, js["data"], js["lease_duration"], js["renewable"], js["lease_id"]),
                         (200, {"key1": "value", "n": 3}, 2764800, False, ""))
        self.assertEqual(self.v.req("GET", "/v1/kv/app/sub/key2")[3]["lease_duration"], 3600)
        for method, path in (("LIST", "/v1/kv/app"), ("GET", "/v1/kv/app?list=true"), ("GET", "/v1/kv/app/?list=1")):
            st, _, _, js = self.v.req(method, path)
            self.assertEqual((st, js["data"]["keys"], js["lease_duration"]), (200, ["key1", "sub/"], 0))
        self.assertError(self.v.req("LIST", "/v1/kv/empty"), 404, [])
        self.assertEqual(self.v.req("DELETE", "/v1/kv/app/key1")[0], 204)
        self.assertEqual(self.v.req("DELETE", "/v1/kv/app/key1")[0], 204)
        self.assertError(self.v.req("GET", "/v1/kv/app/key1"), 404, [])

    def test_overwrite_and_empty_write(self):
        self.v.req("PUT", "/v1/kv/k", {"a": "1", "b": "2"})
        self.v.req("PUT", "/v1/kv/k", {"c": "3"})
        self.assertEqual(self.v.req("GET", "/v1/kv/k")[3]["data"], {"c": "3"})
        self.assertError(self.v.req("PUT", "/v1/kv/k", {}), 400, ["missing data fields"])
        self.assertError(self.v.req("PUT", "/v1/kv/k", raw=b""), 400, ["missing data fields"])


# --------------------------------------------------------------------------------------
class KVv2Test(SimCase):
    def setUp(self):
        super().setUp()
        self.v.mount("kv", "kv", "2")

    def write(self, path, data, cas=None, expect=200):
        body = {"data": data}
        if cas is not None:
            body["options"] = {"cas": cas}
        st, _, raw, js = self.v.req("POST", "/v1/kv/data/" + path, body)
        self.assertEqual(st, expect, raw)
        return js

    def test_write_and_read_versions(self):
        js = self.write("k", {"k": "v1"})
        self.assertEqual(list(js["data"]), ["created_time", "custom_metadata", "deletion_time", "destroyed", "version"])
        self.assertEqual((js["data"]["version"], js["data"]["deletion_time"], js["data"]["custom_metadata"]),
                         (1, "", None))
        self.assertRegex(js["data"]["created_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.write("k", {"k": "v2"})
        st, _, _, js = self.v.req("GET", "/v1/kv/data/k")
        self.assertEqual((js["data"]["data"], js["data"]["metadata"]["version"]), ({"k": "v2"}, 2))
        js = self.v.req("GET", "/v1/kv/data/k?version=1")[3]
        self.assertEqual((js["data"]["data"], js["data"]["metadata"]["version"]), ({"k": "v1"}, 1))
        self.assertError(self.v.req("GET", "/v1/kv/data/k?version=7"), 404, [])
        self.assertError(self.v.req("GET", "/v1/kv/data/missing"), 404, [])

    def test_cas(self):
        self.write("k", {"a": "1"}, cas=0)
        js = self.v.req("POST", "/v1/kv/data/k", {"options": {"cas": 0}, "data": {"a": "2"}})
        self.assertError(js, 400, ["check-and-set parameter did not match the current version"])
        self.write("k", {"a": "2"}, cas=1)
        self.assertError(self.v.req("POST", "/v1/kv/data/k", {"options": {"cas": "x"}, "data": {}}), 400,
                         ["error parsing check-and-set parameter"])
        self.assertEqual(self.v.req("POST", "/v1/kv/config", {"cas_required": True})[0], 204)
        self.assertError(self.v.req("POST", "/v1/kv/data/k", {"data": {"a": "3"}}), 400,
                         ["check-and-set parameter required for this call"])
        self.write("k", {"a": "3"}, cas=2)
        js = self.v.req("GET", "/v1/kv/config")[3]
        self.assertEqual(js["data"], {"cas_required": True, "delete_version_after": "0s", "max_versions": 0})

    def test_write_without_data_refused(self):
        self.assertError(self.v.req("POST", "/v1/kv/data/k", {"k": "v"}), 400, ["no data provided"])

    def test_soft_delete_undelete_destroy(self):
        for i in range(3):
            self.write("k", {"n": i})
        self.assertEqual(self.v.req("DELETE", "/v1/kv/data/k")[0], 204)
        st, _, _, js = self.v.req("GET", "/v1/kv/data/k")
        self.assertEqual(st, 404)
        self.assertIsNone(js["data"]["data"])
        self.assertEqual(js["data"]["metadata"]["version"], 3)
        self.assertNotEqual(js["data"]["metadata"]["deletion_time"], "")
        self.assertEqual(js["request_id"] != "", True)
        self.assertEqual(self.v.req("POST", "/v1/kv/undelete/k", {"versions": [3]})[0], 204)
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k")[3]["data"]["data"], {"n": 2})
        self.assertEqual(self.v.req("POST", "/v1/kv/delete/k", {"versions": [1, 2]})[0], 204)
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k?version=1")[0], 404)
        self.assertEqual(self.v.req("PUT", "/v1/kv/destroy/k", {"versions": [3]})[0], 204)
        st, _, _, js = self.v.req("GET", "/v1/kv/data/k")
        self.assertEqual((st, js["data"]["metadata"]["destroyed"]), (404, True))
        self.assertEqual(self.v.req("POST", "/v1/kv/undelete/k", {"versions": [3]})[0], 204)
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k")[0], 404)  # destroyed stays destroyed
        self.assertError(self.v.req("POST", "/v1/kv/delete/k", {}), 400, ["No version number provided"])
        self.assertError(self.v.req("POST", "/v1/kv/destroy/k", {"versions": []}), 400,
                         ["no version number provided"])
        # cas on a soft-deleted key must match its current version
        self.write("k", {"n": 9}, cas=3)

    def test_tombstone_sequence(self):
        """What kesc's delete and re-create do on K/V v2 (keystore/vault_tomb.c), under kesc's
        policy: a write over the key with cas=<its version> (needs update; create alone is
        refused), destroying the versions before it (needs update on destroy/; unknown and
        trimmed versions are skipped), version 1 then answers 404 destroyed (what KES reads),
        and a re-create with cas=<tombstone version> that only one of two writers wins."""
        self.v.policy("kesc", 'path "kv/data/*" { capabilities = ["create", "read", "update"] }\n'
                              'path "kv/destroy/*" { capabilities = ["update"] }\n'
                              'path "kv/metadata/*" { capabilities = ["list"] }')
        self.v.policy("kes", 'path "kv/data/*" { capabilities = ["create", "read"] }\n'
                             'path "kv/metadata/*" { capabilities = ["list", "delete"] }')
        kesc, kes = self.v.token(policies=["kesc"]), self.v.token(policies=["kes"])

        def put(token, cas, value):
            return self.v.req("PUT", "/v1/kv/data/p/k", {"options": {"cas": cas}, "data": {"k": value}},
                              token=token)

        self.assertEqual(put(kesc, 0, "key-1")[0], 200)
        st, _, _, js = self.v.req("GET", "/v1/kv/data/p/k", token=kesc)
        self.assertEqual((st, js["data"]["metadata"]["version"]), (200, 1))
        # KES's policy may create but not write over an existing entry, whatever the cas.
        self.assertError(put(kes, 1, "tomb"), 403, [DENIED])
        self.assertError(self.v.req("PUT", "/v1/kv/destroy/p/k", {"versions": [1]}, token=kes), 403, [DENIED])
        # The tombstone: the next version, only over the version read.
        self.assertError(put(kesc, 0, "tomb"), 400, ["check-and-set parameter did not match the current version"])
        st, _, _, js = put(kesc, 1, "tomb")
        self.assertEqual((st, js["data"]["version"]), (200, 2))
        self.assertEqual(self.v.req("PUT", "/v1/kv/destroy/p/k", {"versions": [1]}, token=kesc)[0], 204)
        st, _, _, js = self.v.req("GET", "/v1/kv/data/p/k?version=1", token=kesc)
        self.assertEqual((st, js["data"]["data"], js["data"]["metadata"]["destroyed"]), (404, None, True))
        st, _, _, js = self.v.req("GET", "/v1/kv/data/p/k", token=kesc)
        self.assertEqual((st, js["data"]["data"], js["data"]["metadata"]["version"]), (200, {"k": "tomb"}, 2))
        # Re-create over it: one of two writers with the same cas wins.
        self.assertEqual(put(kesc, 2, "key-2")[0], 200)
        self.assertError(put(kesc, 2, "key-3"), 400, ["check-and-set parameter did not match the current version"])
        self.assertEqual(self.v.req("GET", "/v1/kv/data/p/k", token=kesc)[3]["data"]["data"], {"k": "key-2"})
        self.assertEqual(self.v.req("GET", "/v1/kv/data/p/k?version=1", token=kesc)[0], 404)
        # Destroying versions that are gone, destroyed already or not there yet: skipped.
        for v in range(4, 14):
            self.assertEqual(put(kesc, v - 1, "n%d" % v)[0], 200)
        self.assertEqual(self.v.req("PUT", "/v1/kv/destroy/p/k", {"versions": list(range(1, 20))},
                                    token=kesc)[0], 204)
        js = self.v.req("GET", "/v1/kv/metadata/p/k")[3]["data"]
        self.assertEqual((js["current_version"], js["oldest_version"]), (13, 4))
        self.assertTrue(all(x["destroyed"] for x in js["versions"].values()))
        self.assertEqual(self.v.req("PUT", "/v1/kv/destroy/p/none", {"versions": [1]}, token=kesc)[0], 204)

    def test_metadata_read_list_delete(self):
        self.write("dir/a", {"x": 1})
        self.write("dir/a", {"x": 2})
        self.write("dir/sub/b", {"x": 1})
        self.write("top", {"x": 1})
        js = self.v.req("GET", "/v1/kv/metadata/dir/a")[3]["data"]
        self.assertEqual((js["current_version"], js["oldest_version"], js["max_versions"], js["cas_required"]),
                         (2, 1, 0, False))
        self.assertEqual(sorted(js["versions"]), ["1", "2"])
        self.assertEqual(js["delete_version_after"], "0s")
        self.assertEqual(self.v.req("LIST", "/v1/kv/metadata/")[3]["data"]["keys"], ["dir/", "top"])
        self.assertEqual(self.v.req("GET", "/v1/kv/metadata/dir?list=true")[3]["data"]["keys"], ["a", "sub/"])
        self.assertError(self.v.req("LIST", "/v1/kv/metadata/nothing"), 404, [])
        self.v.req("DELETE", "/v1/kv/data/dir/a")
        self.assertIn("a", self.v.req("LIST", "/v1/kv/metadata/dir")[3]["data"]["keys"])  # soft-deleted still listed
        self.assertEqual(self.v.req("DELETE", "/v1/kv/metadata/dir/a")[0], 204)
        self.assertError(self.v.req("GET", "/v1/kv/data/dir/a?version=1"), 404, [])
        self.assertError(self.v.req("GET", "/v1/kv/metadata/dir/a"), 404, [])
        self.assertEqual(self.v.req("LIST", "/v1/kv/metadata/dir")[3]["data"]["keys"], ["sub/"])
        self.write("dir/a", {"x": 3}, cas=0)  # gone completely: create-only works again

    def test_max_versions_and_custom_metadata(self):
        self.assertEqual(self.v.req("POST", "/v1/kv/metadata/k",
                                    {"max_versions": 2, "custom_metadata": {"owner": "me"}})[0], 204)
        for i in range(4):
            self.write("k", {"n": i})
        js = self.v.req("GET", "/v1/kv/metadata/k")[3]["data"]
        self.assertEqual((js["current_version"], js["oldest_version"], sorted(js["versions"])), (4, 3, ["3", "4"]))
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k?version=1")[0], 404)
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k")[3]["data"]["metadata"]["custom_metadata"],
                         {"owner": "me"})

    def test_delete_version_after(self):
        self.assertEqual(self.v.req("POST", "/v1/kv/config", {"delete_version_after": "1s"})[0], 204)
        self.write("k", {"a": 1})
        st, _, _, js = self.v.req("GET", "/v1/kv/data/k")
        self.assertEqual(st, 200)  # a deletion_time in the future does not hide the data
        self.assertNotEqual(js["data"]["metadata"]["deletion_time"], "")
        time.sleep(1.2)
        st, _, _, js = self.v.req("GET", "/v1/kv/data/k")
        self.assertEqual((st, js["data"]["data"]), (404, None))
        self.assertEqual(self.v.req("GET", "/v1/kv/config")[3]["data"]["delete_version_after"], "1s")

    def test_invalid_v2_paths_have_warnings(self):
        self.write("k", {"a": 1})
        st, _, _, js = self.v.req("GET", "/v1/kv/k")
        self.assertEqual(st, 404)
        self.assertEqual(js["warnings"], ["Invalid path for a versioned K/V secrets engine. See the API docs for the "
                                          "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv "
                                          "get' for this operation."])
        st, _, _, js = self.v.req("GET", "/v1/kv/data")
        self.assertEqual((st, js["warnings"]),
                         (404, ["Non-listing operations on the root of a K/V v2 mount are not supported."]))

    def test_patch(self):
        ct = {"Content-Type": "application/merge-patch+json"}
        st, _, raw, _ = self.v.req("PATCH", "/v1/kv/data/k", {"data": {"a": 1}}, headers=ct)
        self.assertEqual((st, raw), (404, b""))
        self.write("k", {"a": "1", "b": {"c": "2"}, "d": "x"})
        st, _, _, js = self.v.req("PATCH", "/v1/kv/data/k", {"data": {"a": "9", "b": {"e": "3"}, "d": None}},
                                  headers=ct)
        self.assertEqual((st, js["data"]["version"]), (200, 2))
        self.assertEqual(self.v.req("GET", "/v1/kv/data/k")[3]["data"]["data"],
                         {"a": "9", "b": {"c": "2", "e": "3"}})

    def test_subkeys(self):
        self.write("k", {"foo": "abc", "bar": {"baz": "def"}, "quux": {}})
        js = self.v.req("GET", "/v1/kv/subkeys/k")[3]
        self.assertEqual(js["data"]["subkeys"], {"foo": None, "bar": {"baz": None}, "quux": None})


# --------------------------------------------------------------------------------------
class TransitTest(SimCase):
    def setUp(self):
        super().setUp()
        self.v.mount("transit", "transit")

    def enc(self, key, pt, expect=200, **extra):
        body = dict(plaintext=base64.b64encode(pt).decode(), **extra)
        st, _, raw, js = self.v.req("POST", "/v1/transit/encrypt/" + key, body)
        self.assertEqual(st, expect, raw)
        return js

    def dec(self, key, ct):
        return self.v.req("POST", "/v1/transit/decrypt/" + key, {"ciphertext": ct})

    def test_roundtrip_rotation_min_decryption(self):
        st, _, _, js = self.v.req("POST", "/v1/transit/keys/k", {})
        self.assertEqual((st, js["data"]["type"], js["data"]["latest_version"]), (200, "aes256-gcm96", 1))
        c1 = self.enc("k", b"secret one")["data"]
        self.assertTrue(c1["ciphertext"].startswith("vault:v1:"))
        self.assertEqual(c1["key_version"], 1)
        self.assertNotEqual(self.enc("k", b"secret one")["data"]["ciphertext"], c1["ciphertext"])
        st, _, _, js = self.dec("k", c1["ciphertext"])
        self.assertEqual((st, base64.b64decode(js["data"]["plaintext"])), (200, b"secret one"))
        js = self.v.req("POST", "/v1/transit/keys/k/rotate")[3]
        self.assertEqual((js["data"]["latest_version"], sorted(js["data"]["keys"])), (2, ["1", "2"]))
        c2 = self.enc("k", b"two")["data"]["ciphertext"]
        self.assertTrue(c2.startswith("vault:v2:"))
        self.assertEqual(base64.b64decode(self.dec("k", c1["ciphertext"])[3]["data"]["plaintext"]), b"secret one")
        js = self.v.req("POST", "/v1/transit/keys/k/config", {"min_decryption_version": 2})[3]
        self.assertEqual(js["data"]["min_decryption_version"], 2)
        self.assertError(self.dec("k", c1["ciphertext"]), 400,
                         ["ciphertext or signature version is disallowed by policy (too old)"])
        self.assertEqual(base64.b64decode(self.dec("k", c2)[3]["data"]["plaintext"]), b"two")
        self.assertError(self.v.req("POST", "/v1/transit/keys/k/config", {"min_decryption_version": 5}), 400,
                         ["cannot set min decryption version of 5, latest key version is 2"])
        rw = self.v.req("POST", "/v1/transit/rewrap/k", {"ciphertext": c2})[3]["data"]
        self.assertEqual(rw["key_version"], 2)
        self.assertEqual(base64.b64decode(self.dec("k", rw["ciphertext"])[3]["data"]["plaintext"]), b"two")

    def test_bad_ciphertexts(self):
        ct = self.enc("k", b"hello world")["data"]["ciphertext"]  # upserts the key (root has create)
        blob = bytearray(base64.b64decode(ct.split(":", 2)[2]))
        blob[14] ^= 1
        tampered = "vault:v1:" + base64.b64encode(bytes(blob)).decode()
        self.assertError(self.dec("k", tampered), 400, ["cipher: message authentication failed"])
        self.assertError(self.dec("k", "nope"), 400, ["invalid ciphertext: no prefix"])
        self.assertError(self.dec("k", "vault:v1"), 400, ["invalid ciphertext: wrong number of fields"])
        self.assertError(self.dec("k", "vault:vX:abc"), 400, ["invalid ciphertext: version number could not be decoded"])
        self.assertError(self.dec("k", "vault:v9:" + ct.split(":", 2)[2]), 400, ["invalid ciphertext: version is too new"])
        self.assertError(self.dec("k", "vault:v1:!!!"), 400, ["invalid ciphertext: could not decode base64"])
        self.assertError(self.dec("k", ""), 400, ["missing ciphertext to decrypt"])
        self.assertError(self.dec("nokey", ct), 400, ["encryption key not found"])
        self.assertError(self.v.req("POST", "/v1/transit/keys/nokey/rotate"), 400, ["key not found"])

    def test_batch_and_datakey(self):
        items = [{"plaintext": base64.b64encode(b"a").decode(), "reference": "r1"},
                 {"plaintext": base64.b64encode(b"bb").decode()}]
        st, _, _, js = self.v.req("POST", "/v1/transit/encrypt/b", {"batch_input": items})
        self.assertEqual(st, 200)
        res = js["data"]["batch_results"]
        self.assertEqual([r["reference"] for r in res], ["r1", ""])
        dec_in = [{"ciphertext": res[0]["ciphertext"]}, {"ciphertext": "bogus"}, {"ciphertext": res[1]["ciphertext"]}]
        st, _, _, js = self.v.req("POST", "/v1/transit/decrypt/b", {"batch_input": dec_in})
        self.assertEqual(st, 400)  # item failures: 400 with a normal envelope, not an errors array
        out = js["data"]["batch_results"]
        self.assertEqual(base64.b64decode(out[0]["plaintext"]), b"a")
        self.assertEqual(out[1]["error"], "invalid ciphertext: no prefix")
        self.assertEqual(base64.b64decode(out[2]["plaintext"]), b"bb")
        st, _, _, _ = self.v.req("POST", "/v1/transit/decrypt/b",
                                 {"batch_input": dec_in, "partial_failure_response_code": 207})
        self.assertEqual(st, 207)
        self.assertError(self.v.req("POST", "/v1/transit/decrypt/b", {"batch_input": []}), 400,
                         ["missing batch input to process"])
        js = self.v.req("POST", "/v1/transit/datakey/plaintext/b", {"bits": 128})[3]["data"]
        self.assertEqual(len(base64.b64decode(js["plaintext"])), 16)
        back = self.dec("b", js["ciphertext"])[3]["data"]["plaintext"]
        self.assertEqual(back, js["plaintext"])
        js = self.v.req("POST", "/v1/transit/datakey/wrapped/b", {})[3]["data"]
        self.assertNotIn("plaintext", js)
        self.assertError(self.v.req("POST", "/v1/transit/datakey/other/b", {}), 400,
                         ["Invalid path, must be 'plaintext' or 'wrapped'"])

    def test_key_read_list_upsert_and_permissions(self):
        self.assertEqual(self.v.req("GET", "/v1/transit/keys/k")[0], 404)
        self.enc("k", b"x")
        js = self.v.req("GET", "/v1/transit/keys/k")[3]["data"]
        self.assertEqual((js["name"], js["min_decryption_version"], js["supports_encryption"]), ("k", 1, True))
        self.assertEqual(self.v.req("LIST", "/v1/transit/keys")[3]["data"]["keys"], ["k"])
        st, _, _, js = self.v.req("POST", "/v1/transit/keys/k", {})
        self.assertEqual(js["warnings"], ["key k already existed"])
        self.v.policy("u", 'path "transit/encrypt/*" { capabilities = ["update"] }')
        tok = self.v.token(policies=["u"])
        self.assertError(self.v.req("POST", "/v1/transit/encrypt/new", {"plaintext": "eA=="}, token=tok), 403,
                         [DENIED])
        self.assertEqual(self.v.req("POST", "/v1/transit/encrypt/k", {"plaintext": "eA=="}, token=tok)[0], 200)
        self.assertError(self.v.req("DELETE", "/v1/transit/keys/k"), 400,
                         ["error deleting policy k: deletion is not allowed for this policy"])
        self.v.req("POST", "/v1/transit/keys/k/config", {"deletion_allowed": True})
        self.assertEqual(self.v.req("DELETE", "/v1/transit/keys/k")[0], 204)


# --------------------------------------------------------------------------------------
class TokenTest(SimCase):
    def test_create_lookup_and_auth_object(self):
        st, _, _, js = self.v.req("POST", "/v1/auth/token/create",
                                  {"policies": ["web", "stage"], "meta": {"user": "armon"}, "ttl": "1h"})
        self.assertEqual(st, 200)
        a = js["auth"]
        self.assertEqual(list(a), ["client_token", "accessor", "policies", "token_policies", "metadata",
                                   "lease_duration", "renewable", "entity_id", "token_type", "orphan",
                                   "mfa_requirement", "num_uses"])
        self.assertEqual((a["policies"], a["lease_duration"], a["renewable"], a["token_type"], a["orphan"]),
                         (["default", "stage", "web"], 3600, True, "service", False))
        self.assertEqual(js["warnings"], ['Policy "stage" does not exist', 'Policy "web" does not exist'])
        d = self.v.req("GET", "/v1/auth/token/lookup-self", token=a["client_token"])[3]["data"]
        self.assertEqual((d["id"], d["policies"], d["meta"], d["creation_ttl"], d["renewable"]),
                         (a["client_token"], ["default", "stage", "web"], {"user": "armon"}, 3600, True))
        self.assertTrue(3590 <= d["ttl"] <= 3600)
        self.assertIsInstance(d["expire_time"], str)
        d = self.v.req("GET", "/v1/auth/token/lookup-self")[3]["data"]
        self.assertEqual((d["policies"], d["ttl"], d["expire_time"], d["path"]), (["root"], 0, None, "auth/token/root"))

    def test_ttl_expiry_is_wall_clock(self):
        tok = self.v.token(policies=["default"], ttl="2s")
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)
        time.sleep(2.3)
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok), 403, [INVALID_TOKEN])
        self.assertError(self.v.req("POST", "/v1/auth/token/renew-self", {}, token=tok), 403, [INVALID_TOKEN])

    def test_renew_self_increment_and_max(self):
        t0 = time.monotonic()
        tok = self.v.token(policies=["default"], ttl="2s", explicit_max_ttl="6s")
        st, _, _, js = self.v.req("POST", "/v1/auth/token/renew-self", {"increment": "3s"}, token=tok)
        self.assertEqual((st, js["auth"]["client_token"], js["auth"]["lease_duration"]), (200, tok, 3))
        self.assertIsNone(js["warnings"])
        st, _, _, js = self.v.req("PUT", "/v1/auth/token/renew-self", {"increment": 60}, token=tok)
        self.assertEqual(st, 200)
        self.assertLessEqual(js["auth"]["lease_duration"], 6)
        self.assertRegex(js["warnings"][0], r'^TTL of "1m0s" exceeded the effective max_ttl of "\d+s"; '
                                            r'TTL value is capped accordingly$')
        js = self.v.req("POST", "/v1/auth/token/renew-self", {"increment": 0}, token=tok)[3]
        self.assertLessEqual(js["auth"]["lease_duration"], 6)
        time.sleep(max(0, 6.3 - (time.monotonic() - t0)))
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 403)

    def test_renew_keeps_token_alive(self):
        # Renewing every 1.5 s keeps a 4 s token alive well past its first TTL; the slack
        # keeps the test steady on a loaded machine.
        tok = self.v.token(policies=["default"], ttl="4s")
        for _ in range(4):
            time.sleep(1.5)
            self.assertEqual(self.v.req("POST", "/v1/auth/token/renew-self", {"increment": "4s"}, token=tok)[0], 200)
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)

    def test_not_renewable(self):
        tok = self.v.token(policies=["default"], ttl="1h", renewable=False)
        self.assertError(self.v.req("POST", "/v1/auth/token/renew-self", {}, token=tok), 400,
                         ["lease is not renewable"])
        self.assertError(self.v.req("POST", "/v1/auth/token/renew-self", {}), 400, ["lease is not renewable"])

    def test_revoke_self_revokes_children(self):
        self.v.policy("mint", 'path "auth/token/create" { capabilities = ["update"] }')
        parent = self.v.token(policies=["mint"], ttl="1h")
        st, _, _, js = self.v.req("POST", "/v1/auth/token/create", {"policies": ["default"]}, token=parent)
        child = js["auth"]["client_token"]
        self.assertEqual(self.v.req("POST", "/v1/auth/token/revoke-self", token=parent)[0], 204)
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=parent), 403, [INVALID_TOKEN])
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=child), 403, [INVALID_TOKEN])

    def test_num_uses(self):
        tok = self.v.token(policies=["default"], num_uses=2)
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok), 403, [INVALID_TOKEN])

    def test_default_policy_limits(self):
        tok = self.v.token(policies=["default"])
        self.assertError(self.v.req("POST", "/v1/auth/token/create", {"policies": ["root"]}, token=tok), 403, [DENIED])


# --------------------------------------------------------------------------------------
class AppRoleTest(SimCase):
    def setUp(self):
        super().setUp()
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/approle", {"type": "approle"})[0], 204)
        self.v.mount("kv", "kv", "1")
        self.v.policy("app", 'path "kv/*" { capabilities = ["read", "create", "update"] }')

    def role(self, name="r", **params):
        params.setdefault("token_policies", ["app"])
        self.assertEqual(self.v.req("POST", "/v1/auth/approle/role/" + name, params)[0], 204)
        rid = self.v.req("GET", "/v1/auth/approle/role/%s/role-id" % name)[3]["data"]["role_id"]
        js = self.v.req("POST", "/v1/auth/approle/role/%s/secret-id" % name, {})[3]
        return rid, js["data"]["secret_id"]

    def login(self, rid, sid):
        return self.v.req("PUT", "/v1/auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None)

    def test_login_and_use(self):
        rid, sid = self.role(token_ttl="10m", token_max_ttl="15m")
        st, _, _, js = self.login(rid, sid)
        self.assertEqual(st, 200)
        a = js["auth"]
        self.assertEqual((a["policies"], a["token_policies"], a["metadata"], a["lease_duration"], a["renewable"],
                          a["orphan"], a["token_type"]),
                         (["app", "default"], ["app", "default"], {"role_name": "r"}, 600, True, True, "service"))
        self.assertEqual((js["data"], js["lease_duration"], js["renewable"]), (None, 0, False))
        tok = a["client_token"]
        self.assertEqual(self.v.req("PUT", "/v1/kv/x", {"x": "1"}, token=tok)[0], 204)
        self.assertError(self.v.req("DELETE", "/v1/kv/x", token=tok), 403, [DENIED])
        js = self.v.req("POST", "/v1/auth/token/renew-self", {"increment": "1h"}, token=tok)[3]
        self.assertLessEqual(js["auth"]["lease_duration"], 900)
        self.assertIn("exceeded the effective max_ttl", js["warnings"][0])
        d = self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[3]["data"]
        self.assertEqual((d["path"], d["meta"]), ("auth/approle/login", {"role_name": "r"}))

    def test_login_errors(self):
        rid, sid = self.role()
        self.assertError(self.login(rid, "wrong"), 400, ["invalid role or secret ID"])
        self.assertError(self.login("wrong", sid), 400, ["invalid role or secret ID"])
        self.assertError(self.v.req("POST", "/v1/auth/approle/login", {"secret_id": sid}, token=None), 400,
                         ["missing role_id"])
        self.assertError(self.v.req("POST", "/v1/auth/approle/login", {"role_id": rid}, token=None), 400,
                         ["missing secret_id"])
        self.assertEqual(self.login(rid, sid)[0], 200)

    def test_secret_id_uses_and_ttl(self):
        rid, sid = self.role(secret_id_num_uses=1)
        self.assertEqual(self.login(rid, sid)[0], 200)
        self.assertError(self.login(rid, sid), 400, ["invalid role or secret ID"])
        rid, sid = self.role("t", secret_id_ttl="1s")
        js = self.v.req("POST", "/v1/auth/approle/role/t/secret-id", {})[3]
        self.assertEqual(js["data"]["secret_id_ttl"], 1)
        time.sleep(1.3)
        self.assertError(self.login(rid, sid), 400, ["invalid role or secret ID"])

    def test_secret_id_lookup_and_destroy(self):
        rid, _ = self.role()
        js = self.v.req("POST", "/v1/auth/approle/role/r/secret-id",
                        {"metadata": '{"tag1": "production"}', "num_uses": 5, "ttl": 600})[3]["data"]
        sid, acc = js["secret_id"], js["secret_id_accessor"]
        self.assertEqual((js["secret_id_ttl"], js["secret_id_num_uses"]), (600, 5))
        d = self.v.req("POST", "/v1/auth/approle/role/r/secret-id/lookup", {"secret_id": sid})[3]["data"]
        self.assertEqual((d["metadata"], d["secret_id_accessor"], d["secret_id_num_uses"]),
                         ({"tag1": "production"}, acc, 5))
        self.assertEqual(self.login(rid, sid)[3]["auth"]["metadata"], {"role_name": "r", "tag1": "production"})
        self.assertIn(acc, self.v.req("LIST", "/v1/auth/approle/role/r/secret-id")[3]["data"]["keys"])
        self.assertEqual(self.v.req("POST", "/v1/auth/approle/role/r/secret-id-accessor/destroy",
                                    {"secret_id_accessor": acc})[0], 204)
        self.assertError(self.login(rid, sid), 400, ["invalid role or secret ID"])
        self.assertEqual(self.v.req("POST", "/v1/auth/approle/role/r/secret-id/lookup", {"secret_id": sid})[0], 204)

    def test_short_token_ttl_expires(self):
        rid, sid = self.role(token_ttl="2s", token_max_ttl="3s")
        tok = self.login(rid, sid)[3]["auth"]["client_token"]
        self.assertEqual(self.v.req("PUT", "/v1/kv/y", {"y": "1"}, token=tok)[0], 204)
        time.sleep(2.3)
        self.assertError(self.v.req("GET", "/v1/kv/y", token=tok), 403, [INVALID_TOKEN])
        tok = self.login(rid, sid)[3]["auth"]["client_token"]  # re-login works
        self.assertEqual(self.v.req("GET", "/v1/kv/y", token=tok)[0], 200)

    def test_bind_secret_id_false_and_role_read(self):
        self.v.req("POST", "/v1/auth/approle/role/nobind", {"bind_secret_id": False, "token_policies": "app"})
        rid = self.v.req("GET", "/v1/auth/approle/role/nobind/role-id")[3]["data"]["role_id"]
        st, _, _, js = self.v.req("POST", "/v1/auth/approle/login", {"role_id": rid}, token=None)
        self.assertEqual(st, 200, js)
        d = self.v.req("GET", "/v1/auth/approle/role/nobind")[3]["data"]
        self.assertEqual((d["bind_secret_id"], d["token_policies"]), (False, ["app"]))
        self.assertEqual(self.v.req("LIST", "/v1/auth/approle/role")[3]["data"]["keys"], ["nobind"])


# --------------------------------------------------------------------------------------
def make_jwt(claims):
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return enc({"alg": "RS256", "kid": "x"}) + "." + enc(claims) + ".c2lnbmF0dXJl"


class KubernetesTest(SimCase):
    def setUp(self):
        super().setUp()
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/kubernetes", {"type": "kubernetes"})[0], 204)
        self.assertEqual(self.v.req("POST", "/v1/auth/kubernetes/config",
                                    {"kubernetes_host": "https://127.0.0.1:6443"})[0], 204)
        self.assertEqual(self.v.req("POST", "/v1/auth/kubernetes/role/kes", {
            "bound_service_account_names": ["kes"], "bound_service_account_namespaces": "default,kms",
            "policies": ["app"], "ttl": "2s"})[0], 204)

    def login(self, role, jwt):
        return self.v.req("PUT", "/v1/auth/kubernetes/login", {"role": role, "jwt": jwt}, token=None)

    def test_login_legacy_and_projected_tokens(self):
        legacy = make_jwt({"iss": "kubernetes/serviceaccount",
                           "kubernetes.io/serviceaccount/namespace": "default",
                           "kubernetes.io/serviceaccount/service-account.name": "kes",
                           "kubernetes.io/serviceaccount/service-account.uid": "u-1",
                           "kubernetes.io/serviceaccount/secret.name": "kes-token-x"})
        st, _, _, js = self.login("kes", legacy)
        self.assertEqual(st, 200)
        self.assertEqual(js["auth"]["metadata"], {"role": "kes", "service_account_name": "kes",
                                                  "service_account_namespace": "default",
                                                  "service_account_secret_name": "kes-token-x",
                                                  "service_account_uid": "u-1"})
        self.assertEqual((js["auth"]["policies"], js["auth"]["lease_duration"]), (["app", "default"], 2))
        projected = make_jwt({"kubernetes.io": {"namespace": "kms", "serviceaccount": {"name": "kes", "uid": "u-2"}}})
        tok = self.login("kes", projected)[3]["auth"]["client_token"]
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 200)
        time.sleep(2.3)
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 403)

    def test_login_errors(self):
        ok_claims = {"kubernetes.io/serviceaccount/namespace": "default",
                     "kubernetes.io/serviceaccount/service-account.name": "kes"}
        self.assertError(self.login("kes", make_jwt(dict(ok_claims, **{
            "kubernetes.io/serviceaccount/service-account.name": "other"}))), 403,
            ["service account name not authorized"])
        self.assertError(self.login("kes", make_jwt(dict(ok_claims, **{
            "kubernetes.io/serviceaccount/namespace": "prod"}))), 403, ["namespace not authorized"])
        self.assertError(self.login("nope", make_jwt(ok_claims)), 400, ['invalid role name "nope"'])
        self.assertError(self.login("kes", "not-a-jwt"), 403, ["permission denied"])
        self.assertError(self.v.req("POST", "/v1/auth/kubernetes/login", {"role": "kes"}, token=None), 400,
                         ["missing jwt"])
        self.assertError(self.v.req("POST", "/v1/auth/kubernetes/login", {"jwt": "x"}, token=None), 400,
                         ["missing role"])


# --------------------------------------------------------------------------------------
class NamespaceTest(SimCase):
    def test_isolation_header_and_path_prefix(self):
        st, _, _, js = self.v.req("POST", "/v1/sys/namespaces/ns1")
        self.assertEqual((st, js["data"]["path"]), (200, "ns1/"))
        self.v.req("POST", "/v1/sys/namespaces/ns2")
        self.v.mount("kv", "kv", "2", ns="ns1")
        self.v.mount("kv", "kv", "2", ns="ns2")
        self.assertEqual(self.v.req("POST", "/v1/kv/data/s", {"data": {"who": "ns1"}}, headers=_ns("ns1/"))[0], 200)
        self.assertEqual(self.v.req("POST", "/v1/ns2/kv/data/s", {"data": {"who": "ns2"}})[0], 200)
        self.assertEqual(self.v.req("GET", "/v1/ns1/kv/data/s")[3]["data"]["data"], {"who": "ns1"})
        self.assertEqual(self.v.req("GET", "/v1/kv/data/s", headers=_ns("ns2"))[3]["data"]["data"], {"who": "ns2"})
        self.assertError(self.v.req("GET", "/v1/kv/data/s"), 404,
                         ['no handler for route "kv/data/s". route entry not found.'])
        self.assertEqual(self.v.req("LIST", "/v1/sys/namespaces")[3]["data"]["keys"], ["ns1/", "ns2/"])
        self.assertNotIn("kv/", self.v.req("GET", "/v1/sys/mounts")[3]["data"])

    def test_lock_namespace(self):
        self.v.req("POST", "/v1/sys/namespaces/ns1")
        self.v.req("POST", "/v1/sys/namespaces/child", headers=_ns("ns1"))
        self.v.req("POST", "/v1/sys/namespaces/ns2")
        for ns in ("ns1", "ns1/child", "ns2"):
            self.v.mount("kv", "kv", "1", ns=ns)
            self.v.req("PUT", "/v1/kv/a", {"v": ns}, headers=_ns(ns))
        self.assertEqual(self.v.control("lock-namespace", {"namespace": "ns1/"})[0], 204)
        locked = "API access to this namespace has been locked by an administrator"
        self.assertError(self.v.req("GET", "/v1/kv/a", headers=_ns("ns1")), 503, [locked])
        self.assertError(self.v.req("GET", "/v1/ns1/child/kv/a"), 503, [locked])
        self.assertEqual(self.v.req("GET", "/v1/kv/a", headers=_ns("ns2"))[3]["data"], {"v": "ns2"})
        health = self.v.req("GET", "/v1/sys/health", token=None)
        self.assertEqual((health[0], health[3]["sealed"]), (200, False))
        self.v.control("lock-namespace", {"namespace": "ns1", "locked": False})
        self.assertEqual(self.v.req("GET", "/v1/ns1/kv/a")[3]["data"], {"v": "ns1"})
        self.assertError(self.v.control("lock-namespace", {"namespace": "nope"}), 400,
                         ["invalid fault parameters"])

    def test_tokens_and_policies_are_bound_to_namespace(self):
        self.v.req("POST", "/v1/sys/namespaces/ns1")
        self.v.mount("kv", "kv", "1", ns="ns1")
        self.v.mount("kv", "kv", "1")
        self.v.req("PUT", "/v1/kv/a", {"v": "ns1"}, headers=_ns("ns1"))
        self.v.req("PUT", "/v1/kv/a", {"v": "root"})
        self.v.policy("r", 'path "kv/*" { capabilities = ["read"] }', ns="ns1")
        tok = self.v.token(ns="ns1", policies=["r"])
        self.assertEqual(self.v.req("GET", "/v1/kv/a", token=tok, headers=_ns("ns1"))[3]["data"], {"v": "ns1"})
        self.assertEqual(self.v.req("GET", "/v1/ns1/kv/a", token=tok)[0], 200)
        self.assertError(self.v.req("GET", "/v1/kv/a", token=tok), 403, [DENIED])
        # the same policy name in root does not exist: a root-namespace token with "r" gets nothing
        rtok = self.v.token(policies=["r"])
        self.assertError(self.v.req("GET", "/v1/kv/a", token=rtok), 403, [DENIED])
        d = self.v.req("GET", "/v1/auth/token/lookup-self", token=tok, headers=_ns("ns1"))[3]["data"]
        self.assertEqual(d["namespace_path"], "ns1/")

    def test_approle_inside_namespace(self):
        self.v.req("POST", "/v1/sys/namespaces/team")
        h = _ns("team")
        self.assertEqual(self.v.req("POST", "/v1/sys/auth/approle", {"type": "approle"}, headers=h)[0], 204)
        self.v.req("POST", "/v1/auth/approle/role/r", {"token_policies": "default"}, headers=h)
        rid = self.v.req("GET", "/v1/auth/approle/role/r/role-id", headers=h)[3]["data"]["role_id"]
        sid = self.v.req("POST", "/v1/auth/approle/role/r/secret-id", {}, headers=h)[3]["data"]["secret_id"]
        self.assertError(self.v.req("POST", "/v1/auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None),
                         403, ["permission denied"])  # no approle mount in root: not a login path
        st, _, _, js = self.v.req("POST", "/v1/auth/approle/login", {"role_id": rid, "secret_id": sid},
                                  token=None, headers=h)
        self.assertEqual(st, 200)
        tok = js["auth"]["client_token"]
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok, headers=h)[0], 200)
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok)[0], 403)


# --------------------------------------------------------------------------------------
class FaultTest(SimCase):
    def setUp(self):
        super().setUp()
        self.v.mount("kv", "kv", "1")
        self.v.req("PUT", "/v1/kv/a", {"x": "1"})

    def test_controls_need_root_token(self):
        self.assertError(self.v.control("seal", token=None), 403, ["permission denied"])
        tok = self.v.token(policies=["default"])
        self.assertError(self.v.control("seal", token=tok), 403, ["permission denied"])
        self.assertError(self.v.control("nonsense"), 404, [])
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[0], 200)

    def test_fail_count_status_and_prefix(self):
        self.assertEqual(self.v.control("fail", {"count": 2, "status": 503, "path_prefix": "/v1/kv/"})[0], 204)
        self.assertEqual(self.v.req("GET", "/v1/sys/mounts")[0], 200)  # prefix does not match
        self.assertError(self.v.req("GET", "/v1/kv/a"), 503, ["Vault is sealed"])
        self.assertError(self.v.req("PUT", "/v1/kv/b", {"y": "1"}), 503, ["Vault is sealed"])
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[0], 200)
        self.assertError(self.v.req("GET", "/v1/kv/b"), 404, [])  # the failed write did not happen
        self.v.control("fail", {"count": 1, "status": 500, "message": "boom"})
        self.assertError(self.v.req("GET", "/v1/sys/health", token=None), 500, ["boom"])
        self.v.control("fail", {"count": 1, "status": 429, "retry_after": 3})
        st, hdr, _, js = self.v.req("GET", "/v1/kv/a")
        self.assertEqual((st, hdr["Retry-After"], js), (429, "3", {"errors": ['request path "kv/a": rate limit '
                                                                               'quota exceeded']}))
        self.assertError(self.v.control("fail", {"count": 1, "status": 200}), 400, ["invalid fault parameters"])

    def test_latency(self):
        self.v.control("latency", {"ms": 1000})
        t0 = time.monotonic()
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.98)
        self.v.control("latency", {"ms": 0})
        t0 = time.monotonic()
        self.v.req("GET", "/v1/kv/a")
        self.assertLess(time.monotonic() - t0, 0.9)

    def test_fail_by_method_and_after_the_effect(self):
        # "method" narrows a rule; the GET is not failed, the PUT is.
        self.v.control("fail", {"count": 1, "status": 500, "path_prefix": "/v1/kv/b", "method": "PUT"})
        self.assertError(self.v.req("GET", "/v1/kv/b"), 404, [])
        self.assertError(self.v.req("PUT", "/v1/kv/b", {"y": "1"}), 500,
                         ["1 error occurred:\n\t* injected failure\n\n"])
        self.assertError(self.v.req("GET", "/v1/kv/b"), 404, [])  # failed before: not stored
        # "after": the write is stored, then the answer is the failure (an ambiguous outcome).
        self.v.control("fail", {"count": 1, "status": 500, "path_prefix": "/v1/kv/b", "method": "PUT",
                                "after": True})
        self.assertError(self.v.req("PUT", "/v1/kv/b", {"y": "2"}), 500,
                         ["1 error occurred:\n\t* injected failure\n\n"])
        st, _, _, js = self.v.req("GET", "/v1/kv/b")
        self.assertEqual((st, js["data"]), (200, {"y": "2"}))
        for bad in ({"method": 5}, {"method": "P/T"}, {"after": "yes"}):
            self.assertError(self.v.control("fail", dict(bad, count=1)), 400, ["invalid fault parameters"])

    def test_latency_by_path_and_method(self):
        self.v.control("latency", {"ms": 1000, "path_prefix": "/v1/kv/", "method": "PUT"})
        t0 = time.monotonic()
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[0], 200)
        self.assertEqual(self.v.req("GET", "/v1/sys/health", token=None)[0], 200)
        self.assertLess(time.monotonic() - t0, 0.9)
        t0 = time.monotonic()
        self.assertEqual(self.v.req("PUT", "/v1/kv/c", {"z": "1"})[0], 204)
        self.assertGreaterEqual(time.monotonic() - t0, 0.98)
        self.v.control("reset-faults")
        t0 = time.monotonic()
        self.assertEqual(self.v.req("PUT", "/v1/kv/c", {"z": "2"})[0], 204)
        self.assertLess(time.monotonic() - t0, 0.9)

    def test_drop_connections(self):
        self.v.control("drop", {"count": 2})
        for _ in range(2):
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                self.v.req("GET", "/v1/kv/a")
        self.assertEqual(self.v.req("GET", "/v1/kv/a")[0], 200)

    def test_expire_tokens(self):
        tok = self.v.token(policies=["default"], ttl="1h")
        self.assertEqual(self.v.control("expire-tokens")[0], 204)
        self.assertError(self.v.req("GET", "/v1/auth/token/lookup-self", token=tok), 403, [INVALID_TOKEN])
        self.assertEqual(self.v.req("GET", "/v1/auth/token/lookup-self")[0], 200)

    def test_stats(self):
        self.v.control("stats/reset")
        self.v.req("GET", "/v1/kv/a")
        self.v.req("GET", "/v1/kv/a?list=false")
        self.v.req("PUT", "/v1/kv/b", {"y": "1"})
        st, _, _, js = self.v.req("GET", "/_test/stats")
        self.assertEqual(st, 200)
        self.assertEqual(js, {"requests": 3, "by_path": {"GET /v1/kv/a": 2, "PUT /v1/kv/b": 1}})
        self.v.control("stats/reset")
        self.assertEqual(self.v.req("GET", "/_test/stats")[3], {"requests": 0, "by_path": {}})


# --------------------------------------------------------------------------------------
class PolicyParserRobustnessTest(unittest.TestCase):
    """The HCL/JSON policy parser must reject any garbage with a 400, never crash (in-process)."""

    def test_mutated_policies(self):
        import random
        sys.path.insert(0, HERE)
        from vaultsim.acl import parse_policy
        from vaultsim.util import VaultError
        seeds = ['path "kv/*" { capabilities = ["read", "list"] }',
                 'path "a/+/b" {\n capabilities = ["deny"]\n}\n# c\n// d\n/* e */',
                 '{"path": {"kv/*": {"capabilities": ["read"]}}}',
                 'path "x" { policy = "write" }\npath "y" { capabilities = [] }',
                 'path "h" { policy = <<EOT\nread\nEOT\n}']
        for s in seeds:
            self.assertIsInstance(parse_policy(s), dict)
        rng = random.Random(1234)
        alphabet = '{}[]=,:"\\#/*+\n ab<-EOT0.'
        for _ in range(20000):
            s = list(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(s) + 1)
                op = rng.randrange(3)
                if op == 0 and s:
                    del s[min(i, len(s) - 1)]
                elif op == 1:
                    s.insert(i, rng.choice(alphabet))
                elif s:
                    s[min(i, len(s) - 1)] = rng.choice(alphabet)
            try:
                parse_policy("".join(s))
            except VaultError as e:
                self.assertEqual(e.status, 400)
                self.assertTrue(e.errors[0].startswith("failed to parse policy"), e.errors)


class RequestRobustnessTest(unittest.TestCase):
    """Random methods, paths and bodies against the request core: never a 500 (in-process)."""

    def test_random_requests_never_500(self):
        import random
        sys.path.insert(0, HERE)
        from vaultsim.router import Core
        core = Core("root")
        crashes = []
        core.log = crashes.append
        hdr = {"X-Vault-Token": "root", "Content-Type": "application/json"}

        def call(method, path, body, headers=hdr):
            return core.handle(method, path, dict(headers), json.dumps(body).encode(), "127.0.0.1")
        for path, body in (("sys/mounts/kv1", {"type": "kv"}), ("sys/mounts/kv2", {"type": "kv-v2"}),
                           ("sys/mounts/transit", {"type": "transit"}), ("sys/auth/approle", {"type": "approle"}),
                           ("sys/auth/kubernetes", {"type": "kubernetes"}), ("sys/namespaces/ns1", {})):
            self.assertEqual(call("POST", "/v1/" + path, body)[0], 204 if "namespaces" not in path else 200)
        limited = call("POST", "/v1/auth/token/create", {"policies": ["default"]})[2]
        limited = json.loads(limited)["auth"]["client_token"]
        paths = ["kv1/a", "kv1/", "kv2/data/a", "kv2/metadata/a", "kv2/metadata/", "kv2/delete/a", "kv2/undelete/a",
                 "kv2/destroy/a", "kv2/config", "kv2/subkeys/a", "kv2/a", "transit/keys/k", "transit/keys/k/config",
                 "transit/keys/k/rotate", "transit/encrypt/k", "transit/decrypt/k", "transit/rewrap/k",
                 "transit/datakey/plaintext/k", "transit/keys", "auth/approle/role/r", "auth/approle/role/r/role-id",
                 "auth/approle/role/r/secret-id", "auth/approle/login", "auth/approle/role/r/secret-id/lookup",
                 "auth/kubernetes/config", "auth/kubernetes/role/r", "auth/kubernetes/login", "auth/token/create",
                 "auth/token/renew-self", "auth/token/lookup-self", "auth/token/lookup", "sys/policy/p",
                 "sys/policies/acl/p", "sys/mounts/x", "sys/auth/y", "sys/namespaces/n", "sys/capabilities-self",
                 "sys/internal/ui/mounts/kv2", "sys/health?standbyok=x", "ns1/sys/mounts", "sys/seal-status"]
        values = [None, 0, 1, -1, 2 ** 70, 1.5, "", "x", "1h", "-5s", True, [], [1, "a"], {}, {"a": None},
                  "dGVzdA==", "vault:v1:AAAA", "vault:v0:" + "A" * 40, 'path "kv1/*" { capabilities = ["read"] }']
        keys = ["data", "options", "cas", "versions", "plaintext", "ciphertext", "context", "key_version",
                "batch_input", "min_decryption_version", "min_encryption_version", "type", "policy", "rules",
                "role_id", "secret_id", "token_ttl", "token_max_ttl", "secret_id_ttl", "secret_id_num_uses",
                "bind_secret_id", "ttl", "num_uses", "metadata", "role", "jwt", "bound_service_account_names",
                "bound_service_account_namespaces", "kubernetes_host", "policies", "increment", "explicit_max_ttl",
                "renewable", "period", "meta", "paths", "max_versions", "cas_required", "delete_version_after",
                "custom_metadata", "token", "bits", "deletion_allowed", "description", "no_parent", "id",
                "associated_data", "partial_failure_response_code", "secret_id_accessor"]
        rng = random.Random(7)
        for _ in range(15000):
            method = rng.choice(["GET", "POST", "PUT", "DELETE", "LIST", "PATCH"])
            body = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 4))}
            if rng.random() < 0.2:
                body = {"options": {"cas": rng.choice(values)}, "data": rng.choice(values)}
            if rng.random() < 0.1:
                body = {"batch_input": [{rng.choice(keys): rng.choice(values)}]}
            headers = dict(hdr)
            if rng.random() < 0.3:
                headers["X-Vault-Token"] = limited
            if method == "PATCH":
                headers["Content-Type"] = "application/merge-patch+json"
            status = call(method, "/v1/" + rng.choice(paths), body, headers)[0]
            self.assertLess(status, 500, crashes[-1:] or body)
        self.assertEqual(crashes, [])


# --------------------------------------------------------------------------------------
def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class TLSTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vaultsim-tls-")
        d = cls.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca",
                 cwd=d)
        with open(os.path.join(d, "ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        for name in ("server", "client"):
            _openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", name + ".pem", "-days", "1", "-extfile", "ext", cwd=d)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def ctx(self, client_cert=False):
        c = ssl.create_default_context(cafile=self.p("ca.pem"))
        if client_cert:
            c.load_cert_chain(self.p("client.pem"), self.p("client.key"))
        return c

    def test_https(self):
        v = Sim("--tls-cert", self.p("server.pem"), "--tls-key", self.p("server.key"), tls=self.ctx())
        try:
            self.assertTrue(v.url.startswith("https://127.0.0.1:"))
            self.assertEqual(v.req("GET", "/v1/sys/health", token=None)[0], 200)
            plain = http.client.HTTPConnection(v.host, v.port, timeout=5)
            with self.assertRaises((http.client.HTTPException, ConnectionError)):
                plain.request("GET", "/v1/sys/health")
                plain.getresponse().read()
            plain.close()
            self.assertEqual(v.req("GET", "/v1/sys/health", token=None)[0], 200)  # still serving
        finally:
            v.stop()

    def test_client_certificate_required(self):
        v = Sim("--tls-cert", self.p("server.pem"), "--tls-key", self.p("server.key"),
                "--client-ca", self.p("ca.pem"), tls=self.ctx(client_cert=False))
        try:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                v.req("GET", "/v1/sys/health", token=None)
            v.tls = self.ctx(client_cert=True)
            self.assertEqual(v.req("GET", "/v1/auth/token/lookup-self")[0], 200)
        finally:
            v.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
