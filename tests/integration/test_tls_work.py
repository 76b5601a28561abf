"""Where the work of TLS handshakes happens and what a connection costs before it proves
anything: the public-key steps of full handshakes run on the handshake threads (kesc-tls*), not
on the event loops that serve keep-alive traffic; a connection that sends no TLS gets no TLS
buffers; X25519 is chosen when the client offers it; and handshakes running on other threads
never mix up whose connection is whose.
"""

import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402


def thread_cpu_ticks(pid):
    """{thread name: user+system CPU ticks} summed over the threads of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class TlsWorkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One loop and one handshake thread: what runs where is unambiguous.
        cls.srv = kesctest.Server(config={"server": {"threads": 1}})

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        if report:
            raise AssertionError("sanitizer findings:\n" + report)
        if code != 0:
            raise AssertionError("server exit code %r" % code)

    def test_full_handshakes_run_on_the_handshake_threads(self):
        pid = self.srv.proc.pid
        before = thread_cpu_ticks(pid)
        for _ in range(60):  # a fresh connection, so a full handshake, for each
            self.assertEqual(self.srv.request("GET", "/version").status, 200)
        after = thread_cpu_ticks(pid)

        def spent(prefix):
            return sum(after[n] - before.get(n, 0) for n in after if n.startswith(prefix))
        tls, loops = spent("kesc-tls"), spent("kesc-loop")
        # Each handshake signs, makes and uses an ECDHE key and checks the client's
        # signature there (milliseconds); the loop only moves bytes and answers /version.
        self.assertGreater(tls, 2 * loops, "CPU ticks: handshake threads %d, loops %d" %
                           (tls, loops))

    def test_silent_connections_get_no_tls_buffers(self):
        """A connection that never sends TLS (a port scan, a TCP health check) costs far less
        memory than one that began a handshake: its record buffers are never allocated."""
        pid = self.srv.proc.pid
        ctx = self.srv.ssl_context("admin")
        self.assertEqual(self.srv.request("GET", "/version").status, 200)
        silent, hello = [], []

        def settle():
            # Everything accepted (and the hellos answered): a request behind them is served.
            self.assertEqual(self.srv.request("GET", "/version").status, 200)
            return rss_kib(pid)

        try:
            start = settle()
            for _ in range(200):
                silent.append(socket.create_connection(("127.0.0.1", self.srv.port), timeout=10))
            after_silent = settle()
            for _ in range(200):
                raw = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                                    do_handshake_on_connect=False)
                s.setblocking(False)
                try:
                    s.do_handshake()  # sends the ClientHello, then would wait
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                hello.append(s)
            time.sleep(0.5)
            after_hello = settle()
        finally:
            for s in silent + hello:
                s.close()
        silent_kib, hello_kib = after_silent - start, after_hello - after_silent
        self.assertLess(silent_kib, hello_kib / 2,
                        "RSS growth for 200 connections: %d KiB silent, %d KiB after a hello" %
                        (silent_kib, hello_kib))

    def _temp_key(self, groups):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", self.srv.addr, "-tls1_2", "-groups", groups,
             "-cert", self.srv.certs.cert("admin"), "-key", self.srv.certs.key("admin"),
             "-CAfile", self.srv.certs.cert("server")],
            input=b"", capture_output=True, timeout=60).stdout.decode(errors="replace")
        m = re.search(r"Server Temp Key: ([^\n]*)", out)
        self.assertIsNotNone(m, out)
        return m.group(1)

    def test_x25519_preferred_when_offered(self):
        # The client lists P-256 first; the server still picks X25519.
        self.assertTrue(self._temp_key("P-256:X25519").startswith("X25519"))
        self.assertTrue(self._temp_key("P-256").startswith("ECDH, prime256v1"))

    def test_concurrent_handshakes_keep_each_identity(self):
        """Admins and limited clients connecting at once, each with a full handshake run on
        a handshake thread: each gets the answer of its own identity, while a keep-alive
        connection keeps being served."""
        errors = []

        def client(cert, expect):
            for _ in range(8):
                r = self.srv.request("GET", "/v1/policy/list/*", cert=cert)
                if r.status != expect:
                    errors.append((cert, r.status))

        stop = threading.Event()
        served = [0]

        def keep_alive():
            conn = self.srv.connection()
            try:
                while not stop.is_set():
                    conn.request("GET", "/version")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(("keep-alive", r.status))
                    served[0] += 1
            finally:
                conn.close()

        ka = threading.Thread(target=keep_alive)
        ka.start()
        threads = [threading.Thread(target=client, args=(c, e))
                   for c, e in [("admin", 200), ("limited", 403)] * 6]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        ka.join()
        self.assertEqual(errors, [])
        self.assertGreater(served[0], 0)


class HandshakeLifetimeTest(unittest.TestCase):
    """A handshake job that comes back after its client left, or while the server stops,
    finds its connection still allocated and its descriptor not yet reused: the connection is
    closed and freed when the job is back, and the server exits cleanly (ASan/LSan watch)."""

    def _hellos(self, srv, n, reset):
        """n connections that send a ClientHello, so that a job is queued for each."""
        ctx = srv.ssl_context("admin")
        out = []
        for i in range(n):
            raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            if reset and i % 2:
                # Closing with linger 0 sends a reset instead of a FIN.
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                                do_handshake_on_connect=False)
            s.setblocking(False)
            try:
                s.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            out.append(s)
        return out

    def test_clients_that_leave_during_their_handshake_job(self):
        srv = kesctest.Server(config={"server": {"threads": 1}})
        try:
            for _ in range(3):
                for s in self._hellos(srv, 40, reset=True):
                    s.close()
            # Every job came back and its connection went: the server still serves.
            self.assertEqual(srv.request("GET", "/version").status, 200)
        finally:
            code = srv.stop()
            report = srv.sanitizer_report()
            srv.cleanup()
        self.assertEqual(report, "")
        self.assertEqual(code, 0)

    def test_stop_while_handshake_jobs_are_queued(self):
        srv = kesctest.Server(config={"server": {"threads": 1}})
        waiting = []
        try:
            waiting = self._hellos(srv, 60, reset=False)
            code = srv.stop()  # SIGTERM with jobs queued and running
            report = srv.sanitizer_report()
        finally:
            for s in waiting:
                s.close()
            srv.cleanup()
        self.assertEqual(report, "")
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
