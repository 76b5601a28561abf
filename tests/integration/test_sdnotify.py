#!/usr/bin/env python3
"""kesc speaks systemd's notify protocol itself (deploy/systemd/kesc.service.in has Type=notify):
the real server, started with $NOTIFY_SOCKET pointing at a datagram socket this test holds,
sends READY=1 only once it accepts connections, RELOADING=1 then READY=1 around a SIGHUP
reload (also one that fails), and STOPPING=1 on SIGTERM. Both socket kinds systemd may pass are
used: a filesystem path and an abstract "@name".

Environment: KESC_BIN (the kesc binary).
"""
import os
import re
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

WAIT = 60  # generous: a loaded 2-core machine under ASan


class NotifyListener:
    """An AF_UNIX datagram socket like the one systemd creates for a Type=notify unit."""

    def __init__(self, abstract):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if abstract:
            name = "kesc-notify-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="kesc-notify-")
            self.env = os.path.join(self.dir, "notify")
            self.sock.bind(self.env)

    def next(self, timeout=WAIT):
        """The next datagram as a dict of its VARIABLE=value lines (raises on timeout)."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def pending(self):
        self.sock.settimeout(0)
        try:
            return self.sock.recv(4096).decode()
        except BlockingIOError:
            return None

    def close(self):
        self.sock.close()
        if self.dir:
            os.unlink(self.env)
            os.rmdir(self.dir)


class TestNotify(unittest.TestCase):
    def lifecycle(self, abstract):
        n = NotifyListener(abstract)
        self.addCleanup(n.close)
        srv = kesctest.Server(env={"NOTIFY_SOCKET": n.env})
        self.addCleanup(srv.cleanup)

        ready = n.next()
        self.assertEqual(ready.get("READY"), "1", ready)
        # READY=1 means "accepting connections": the port it names answers at once.
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", ready.get("STATUS", ""))
        self.assertIsNotNone(m, ready)
        self.assertEqual(int(m.group(1)), srv.port)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10):
            pass
        self.assertEqual(srv.request("GET", "/v1/status").status, 200)
        self.assertIsNone(n.pending(), "exactly one datagram at start-up")

        # SIGHUP: RELOADING=1 (with systemd ≥ 253's MONOTONIC_USEC) then READY=1.
        self.assertTrue(srv.reload())
        rl = n.next()
        self.assertEqual(rl.get("RELOADING"), "1", rl)
        self.assertRegex(rl.get("MONOTONIC_USEC", ""), r"^\d+$")
        self.assertEqual(n.next().get("READY"), "1")

        # A reload that fails keeps the old configuration running: still READY=1 after it,
        # or systemd would leave the unit "reloading" forever.
        srv.raw_config = "version: v1\naddress: [\n"
        self.assertFalse(srv.reload())
        self.assertEqual(n.next().get("RELOADING"), "1")
        self.assertEqual(n.next().get("READY"), "1")
        self.assertEqual(srv.request("GET", "/v1/status").status, 200)

        srv.signal(signal.SIGTERM)
        st = n.next()
        self.assertEqual(st.get("STOPPING"), "1", st)
        self.assertEqual(srv.proc.wait(WAIT), 0)  # one SIGTERM: a clean drain, exit 0
        srv.stop()
        self.assertEqual(srv.sanitizer_report(), "")

    def test_path_socket(self):
        self.lifecycle(abstract=False)

    def test_abstract_socket(self):
        self.lifecycle(abstract=True)

    def test_no_socket_no_datagram_no_warning(self):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        with kesctest.Server() as srv:
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)
            srv.stop()
            self.assertNotIn("notification", srv.stderr_text())

    def test_unreachable_socket_is_a_warning_not_a_failure(self):
        """A stale $NOTIFY_SOCKET (nobody listening) must not stop the server."""
        with kesctest.Server(env={"NOTIFY_SOCKET": "/nonexistent-kesc/notify"}) as srv:
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)
            srv.wait_stderr("service manager notification failed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
