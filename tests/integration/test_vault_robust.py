"""The Vault keystore when things go wrong: K/V v1 tokens that may overwrite keys, replicas
racing creates, a slow Vault, Vault storing a key but answering 500, Vault going down and
coming back. The real `kesc server` against the Vault test server (tests/vault), over mTLS.

One Vault serves every scenario (each uses its own key names or prefix); tests that inject
faults reset them when they end.
"""

import os
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
        for role, policy in (("kes", POLICY_V1), ("kes-update", POLICY_V1_UPDATE)):
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


class VaultV1Overwrite(unittest.TestCase):
    def test_replicas_with_update_grant_never_both_acknowledge(self):
        """Two replicas, one K/V v1 mount, a token that may update: racing creates of the
        same names must never both be acknowledged (the second write replaced the first
        key, and data encrypted under it is lost)."""
        # Slow reads widen the window between "not found" and the write, as a loaded Vault does.
        VAULT.ok("POST", "/_test/latency", {"ms": 300, "path_prefix": "/v1/kv/", "method": "GET"})
        try:
            with kesc("kes-update", "race-update") as a, kesc("kes-update", "race-update") as b:
                names = ["race-%03d" % i for i in range(40)]
                res = race_creates([a, b], names)
        finally:
            VAULT.ok("POST", "/_test/reset-faults")
        doubled = sorted(n for n, st in res.items() if st == [200, 200])
        print("  %d of %d names acknowledged by both replicas" % (len(doubled), len(names)),
              file=sys.stderr)
        self.assertEqual(doubled, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
