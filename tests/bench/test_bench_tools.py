#!/usr/bin/env python3
"""Smoke test of the benchmark tools (not a benchmark: no figure is judged here, only that
the tools build, run a tiny row against the real server and report what tests/bench/run
reads). Performance verdicts are printed by tests/bench/run, never asserted in `meson test`.

Environment: KESC_BIN (the kesc binary), LOADGEN and HSFLOOR (the tools).
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kesctest  # noqa: E402

LOADGEN = os.environ["LOADGEN"]
HSFLOOR = os.environ["HSFLOOR"]
FLOOR_KEYS = ("sign_us", "sign_kept_us", "verify_us", "p256_keygen_us", "p256_shared_us",
              "x25519_keygen_us", "x25519_shared_us", "floor_p256_us", "floor_x25519_us")


def kv(text):
    return dict(pair.split("=", 1) for pair in text.split())


class HandshakeFloor(unittest.TestCase):
    def test_prints_the_primitives_and_their_sums(self):
        r = subprocess.run([HSFLOOR, "-n", "2", "--kv"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        f = kv(r.stdout)
        for k in FLOOR_KEYS:
            self.assertGreater(float(f[k]), 0, k)
        # The floor is the four operations of a full handshake, summed (rounding aside), signing
        # with the key held as an ECDSA context.
        for curve in ("p256", "x25519"):
            parts = (float(f["sign_kept_us"]) + float(f["verify_us"]) +
                     float(f[curve + "_keygen_us"]) + float(f[curve + "_shared_us"]))
            self.assertAlmostEqual(float(f[f"floor_{curve}_us"]), parts, delta=3)


class LoadGenerator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = kesctest.Server()
        cls.srv.__enter__()
        r = cls.srv.request("POST", "/v1/key/create/smoke")
        assert r.status == 200, r.body

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def loadgen(self, *args):
        s = self.srv
        cmd = [LOADGEN, "--port", str(s.port), "--cert", s.certs.cert("admin"),
               "--key", s.certs.key("admin"), "--server-pid", str(s.proc.pid), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return kv(r.stdout)

    def test_keepalive_row_reports_client_and_server_cpu(self):
        r = self.loadgen("--path", "/v1/key/generate/smoke", "--method", "POST", "--body", "{}",
                         "-c", "2", "-d", "0.5", "--warmup", "0.2")
        self.assertGreater(int(r["requests"]), 0)
        self.assertEqual(r["errors"], "0")
        self.assertGreater(float(r["client_cpu_s"]), 0)
        self.assertGreaterEqual(float(r["server_cpu_s"]), 0)
        self.assertGreaterEqual(int(r["p99_us"]), int(r["p50_us"]))
        self.assertEqual(r["cipher"], "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(r["group"], "X25519")  # offered first, as Go does

    def test_handshake_and_resume_modes(self):
        for mode in ("handshake", "resume"):
            r = self.loadgen("--path", "/version", "--mode", mode, "--total", "3")
            self.assertEqual((r["requests"], r["errors"]), ("3", "0"), mode)
        r = self.loadgen("--path", "/version", "--mode", "handshake", "--total", "1",
                         "--groups", "P-256")
        self.assertEqual(r["group"], "prime256v1")

    def test_sequence_creates_distinct_keys(self):
        r = self.loadgen("--path", "/v1/key/create/seq-%d", "--method", "POST", "-c", "2",
                         "--total", "5")
        self.assertEqual((r["requests"], r["errors"]), ("5", "0"))
        names = self.srv.request("GET", "/v1/key/list/seq-*").json()["names"]
        self.assertEqual(sorted(names), [f"seq-{i}" for i in range(5)])

    def test_burst_and_storm(self):
        r = self.loadgen("--path", "/v1/key/generate/smoke", "--method", "POST", "--body", "{}",
                         "-c", "3", "--total", "3", "--burst")
        self.assertEqual((r["requests"], r["errors"], r["wmin"], r["wmax"]), ("3", "0", "1", "1"))
        r = self.loadgen("--path", "/v1/key/generate/smoke", "--method", "POST", "--body", "{}",
                         "-c", "1", "-d", "1", "--warmup", "0.1", "--storm", "1")
        self.assertGreater(int(r["requests"]), 0)
        self.assertGreater(int(r["storm_requests"]), 0)
        self.assertEqual((r["errors"], r["storm_errors"]), ("0", "0"))


if __name__ == "__main__":
    unittest.main()
