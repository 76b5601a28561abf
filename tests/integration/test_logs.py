"""Logs and metrics through the real `kesc server`: the audit rule (no request is answered
successfully without its audit record, kesc.yml(5) log.audit_failure), sinks that stall or
fill up, log files (mode, symlinks, reopening on SIGHUP), and kesc's own metrics.

A full disk is a 256 KiB tmpfs filled to the last byte when this runs as root and may mount
(CI and sessions do); otherwise the audit file is /dev/full, which fails every write the same
way (ENOSPC), and the test recovers by pointing log.audit elsewhere with SIGHUP instead of
freeing space.
"""

import calendar
import fcntl
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

AUDIT_REFUSED = "audit log unavailable: request not served"
F_SETPIPE_SZ = 1031


def metric(text, name, labels=""):
    """The value of one sample of the exposition text, or None."""
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def metrics_text(srv):
    r = srv.request("GET", "/v1/metrics")
    assert r.status == 200, r
    return r.body.decode()


def wait_for(pred, timeout=30, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def start_with(srv, stdout, stderr_path=None):
    """Starts srv (made with start=False) with its standard output on stdout (a file object or
    descriptor); standard error goes to the harness's file as usual."""
    srv._stdout = open(os.devnull, "wb")  # closed by srv.stop()
    srv._stderr = open(srv.stderr_path, "wb")
    srv.proc = subprocess.Popen(
        [kesctest.KESC_BIN, "server", "--config", srv.config_path, "--addr", "127.0.0.1:0"],
        stdout=stdout, stderr=srv._stderr, stdin=subprocess.DEVNULL)
    kesctest._LIVE.add(srv)
    m = wait_for(lambda: re.search(r"listening on 127\.0\.0\.1:(\d+)", srv.stderr_text()), 60)
    if not m:
        srv.stop()
        raise RuntimeError("kesc did not start:\n" + srv.stderr_text())
    srv.port = int(m.group(1))
    srv.addr = "127.0.0.1:%d" % srv.port
    srv.url = "https://" + srv.addr
    return srv


class FullDisk:
    """A directory whose file system has no free byte left (see the module docstring)."""

    def __init__(self, parent):
        self.dir = os.path.join(parent, "full")
        os.mkdir(self.dir)
        self.mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        self.audit_path = os.path.join(self.dir, "audit.log") if self.mounted else "/dev/full"
        self.filler = os.path.join(self.dir, "filler")

    def fill(self):
        """Takes every free block (the audit file exists already, empty)."""
        if not self.mounted:
            return
        with open(self.filler, "wb", buffering=0) as f:
            chunk = b"x" * 4096
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"x")
            except OSError:
                pass

    def free(self):
        if self.mounted:
            os.unlink(self.filler)

    def cleanup(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.dir])
        os.rmdir(self.dir)


def keys_on_disk(srv):
    return set(os.listdir(os.path.join(srv.dir, "keys")))


class AuditFailClosedTest(unittest.TestCase):
    def test_full_disk_refuses_requests_and_recovers(self):
        srv = kesctest.Server(start=False)
        disk = FullDisk(srv.dir)
        try:
            srv.extra["log"] = {"error": "on", "audit": disk.audit_path}
            srv.write_config()
            srv.start()
            disk.fill()
            # A few records may still fit in the audit file's last page: create until the
            # first refusal.
            refused = None
            for i in range(200):
                r = srv.request("POST", "/v1/key/create/full-%d" % i)
                if r.status != 200:
                    refused = (i, r)
                    break
            self.assertIsNotNone(refused, "every create succeeded on a full disk")
            i, r = refused
            self.assertEqual((r.status, r.message), (503, AUDIT_REFUSED))
            # Refused before the handler: the key store is not touched any more.
            before = keys_on_disk(srv)
            for j in range(3):
                r = srv.request("POST", "/v1/key/create/refused-%d" % j)
                self.assertEqual((r.status, r.message), (503, AUDIT_REFUSED))
            self.assertEqual(keys_on_disk(srv), before)
            self.assertFalse(any(k.startswith("refused-") for k in keys_on_disk(srv)))
            # Reads are audited too.
            r = srv.request("GET", "/v1/key/describe/full-0")
            self.assertEqual((r.status, r.message), (503, AUDIT_REFUSED))
            # Counted, logged (rate-limited), and not counted as written.
            text = metrics_text(srv)
            self.assertGreaterEqual(
                metric(text, "kesc_log_audit_write_failures_total", '{reason="error"}'), 1)
            events = metric(text, "kesc_log_audit_records_total")
            self.assertEqual(srv.request("POST", "/v1/key/create/refused-x").status, 503)
            self.assertEqual(metric(metrics_text(srv), "kesc_log_audit_records_total"), events)
            self.assertGreaterEqual(
                metric(text, "kes_http_request_failure", '{code="503"}'), 5)
            err = srv.stderr_text()
            self.assertRegex(err, r"ERROR audit: cannot write .*No space left on device")
            self.assertLess(err.count("audit: cannot write"), 6)

            # Space again: the server notices by itself (it retries the refusals' records)
            # and serves again.
            if disk.mounted:
                disk.free()
            else:
                srv.extra["log"]["audit"] = os.path.join(srv.dir, "audit.log")
                self.assertTrue(srv.reload())
            r = wait_for(lambda: srv.request("POST", "/v1/key/create/after").status == 200
                         or None, timeout=30, step=0.5)
            self.assertTrue(r, "no create succeeded after space was freed")
            self.assertRegex(srv.stderr_text(), r"INFO audit: writing to .* works again")
            path = disk.audit_path if disk.mounted else os.path.join(srv.dir, "audit.log")
            with open(path) as f:
                lines = [json.loads(l) for l in f if l.strip()]
            after = [l for l in lines if l["request"]["path"] == "/v1/key/create/after"]
            self.assertEqual(after[-1]["response"]["code"], 200)
            if disk.mounted:
                # The refusals were recorded once there was room again, and no record says
                # a refused request succeeded.
                codes = {l["request"]["path"]: l["response"]["code"] for l in lines}
                self.assertTrue(any(codes.get("/v1/key/create/refused-%d" % j) == 503
                                    for j in range(3)))
                self.assertNotIn(200, [codes.get("/v1/key/create/refused-%d" % j)
                                       for j in range(3)])
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()
            disk.cleanup()

    def test_opt_out_serves_without_records(self):
        with kesctest.Server(config={"log": {"error": "on", "audit": "/dev/full",
                                             "audit_failure": "serve"}}) as srv:
            for i in range(3):
                self.assertEqual(srv.request("POST", "/v1/key/create/open-%d" % i).status, 200)
            text = wait_for(lambda: (lambda t: t if metric(
                t, "kesc_log_audit_write_failures_total", '{reason="error"}') >= 3 else None)(
                    metrics_text(srv)))
            self.assertTrue(text)
            self.assertRegex(srv.stderr_text(), r"audit: cannot write .*No space left")
            self.assertIn("log.audit_failure: serve", srv.stderr_text())

    def test_stalled_stdout_bounds_every_request(self):
        """Audit to standard output, a pipe nobody reads: audited requests fail after a
        bounded wait instead of hanging, /v1/status stays quick, audit subscribers keep
        receiving, and once the pipe is read everything is served again."""
        rfd, wfd = os.pipe()
        srv = kesctest.Server(start=False)
        try:
            start_with(srv, stdout=wfd)
            os.close(wfd)
            sub = srv.tls_socket(timeout=30)
            sub.sendall(b"GET /v1/log/audit HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = kesctest.ResponseReader(sub)
            while b"\r\n\r\n" not in reader.buf:
                reader._fill()
            reader.buf = reader.buf.split(b"\r\n\r\n", 1)[1]

            conn = srv.connection(timeout=60)
            first_refusal = None
            for i in range(3000):
                t0 = time.monotonic()
                conn.request("GET", "/v1/key/describe/stalled-%d" % i)
                r = conn.getresponse()
                body = r.read()
                self.assertLess(time.monotonic() - t0, 30, "a request waited too long")
                if r.status == 503:
                    first_refusal = i
                    self.assertEqual(json.loads(body)["message"], AUDIT_REFUSED)
                    break
                self.assertEqual(r.status, 404)
            self.assertIsNotNone(first_refusal, "the pipe never filled up")
            conn.close()
            # Unaudited-required routes stay quick.
            t0 = time.monotonic()
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)
            self.assertLess(time.monotonic() - t0, 10)
            text = metrics_text(srv)
            self.assertGreaterEqual(
                metric(text, "kesc_log_audit_write_failures_total", '{reason="timeout"}'), 1)
            # The subscriber saw the refusal as it was answered (503).
            seen = []
            deadline = time.monotonic() + 20
            want = "/v1/key/describe/stalled-%d" % first_refusal
            while time.monotonic() < deadline and not any(
                    l["request"]["path"] == want for l in seen):
                size = int(reader._line().split(b";")[0], 16)
                data = reader._exact(size)
                reader._line()
                seen += [json.loads(l) for l in data.decode().splitlines()]
            codes = [l["response"]["code"] for l in seen if l["request"]["path"] == want]
            self.assertEqual(codes, [503])
            sub.close()

            # Someone reads the pipe again: requests are served.
            drained = []
            stop = threading.Event()

            def drain():
                while not stop.is_set():
                    if select.select([rfd], [], [], 0.2)[0]:
                        data = os.read(rfd, 65536)
                        if not data:
                            return
                        drained.append(data)
            t = threading.Thread(target=drain)
            t.start()
            try:
                ok = wait_for(lambda: srv.request("GET", "/v1/key/describe/again").status == 404
                              or None, timeout=30, step=0.5)
                self.assertTrue(ok, "not served again after the pipe was read")
                self.assertEqual(srv.stop(), 0)
            finally:
                stop.set()
                t.join()
            out = b"".join(drained).decode()
            lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            self.assertEqual(len(lines), len(out.splitlines()), "a torn or foreign line")
            self.assertTrue(any(l["request"]["path"] == "/v1/key/describe/again"
                                for l in lines))
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()
            os.close(rfd)


class ErrorLogStallTest(unittest.TestCase):
    def test_stalled_error_log_never_blocks(self):
        """The error log on a FIFO (one page) nobody reads: reloads, which log two lines
        each, keep completing long after the FIFO is full, requests are served, and once the
        FIFO is read every queued line arrives. (Dropping lines beyond the queue, and the
        line that reports it, are in test_log.c: a megabyte of queue takes too long to fill
        through reloads.)"""
        srv = kesctest.Server(start=False)
        fifo = os.path.join(srv.dir, "error.fifo")
        os.mkfifo(fifo, 0o600)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(rfd, F_SETPIPE_SZ, 4096)
        try:
            srv.start()  # the banner goes to the harness's stderr file
            srv.extra["log"] = {"error": fifo, "audit": "on"}
            srv.write_config()

            def reloads():
                return metric(metrics_text(srv), "kesc_config_reloads_total", '{result="ok"}')
            for i in range(60):  # about 100 bytes a reload: 6 KiB > the FIFO's 4 KiB
                before = reloads()
                srv.signal(signal.SIGHUP)
                self.assertTrue(wait_for(lambda: (reloads() or 0) > (before or 0), 30),
                                "reload %d did not complete" % i)
            self.assertEqual(srv.request("GET", "/v1/key/describe/x").status, 404)
            data = b""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and data.count(b"configuration reloaded") < 60:
                if select.select([rfd], [], [], 0.2)[0]:
                    data += os.read(rfd, 65536)
            self.assertEqual(data.count(b"configuration reloaded"), 60)
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()
            os.close(rfd)


class LogFileTest(unittest.TestCase):
    def test_files_private_no_symlinks_and_reopened_on_sighup(self):
        old = os.umask(0)
        try:
            srv = kesctest.Server(start=False)
        finally:
            os.umask(old)
        try:
            audit = os.path.join(srv.dir, "audit.log")
            error = os.path.join(srv.dir, "error.log")
            srv.extra["log"] = {"error": error, "audit": audit}
            srv.write_config()
            old = os.umask(0)
            try:
                srv.start()
            finally:
                os.umask(old)
            for p in (audit, error):
                self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)
            self.assertEqual(srv.request("GET", "/v1/key/describe/before").status, 404)
            # logrotate: rename, then SIGHUP; new lines go to new files.
            os.rename(audit, audit + ".1")
            os.rename(error, error + ".1")
            srv.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: os.path.exists(error) and
                                     "configuration reloaded" in open(error).read()))
            self.assertEqual(srv.request("GET", "/v1/key/describe/after").status, 404)
            with open(audit) as f:
                self.assertIn("/v1/key/describe/after", f.read())
            with open(audit + ".1") as f:
                text = f.read()
            self.assertIn("/v1/key/describe/before", text)
            self.assertNotIn("/v1/key/describe/after", text)
            self.assertEqual(stat.S_IMODE(os.stat(audit).st_mode), 0o600)
            self.assertEqual(stat.S_IMODE(os.stat(error).st_mode), 0o600)
            srv.stop()
        finally:
            srv.cleanup()

    def test_symlink_refused(self):
        srv = kesctest.Server(start=False)
        try:
            target = os.path.join(srv.dir, "victim")
            with open(target, "w") as f:
                f.write("precious\n")
            link = os.path.join(srv.dir, "audit.log")
            os.symlink(target, link)
            srv.extra["log"] = {"error": "on", "audit": link}
            srv.write_config()
            r = kesctest.run_kesc("server", "--config", srv.config_path, "--addr", "127.0.0.1:0",
                                  timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"is a symbolic link", r.stderr)
            # --check-config says so too, instead of OK.
            r = kesctest.run_kesc("server", "--check-config", "--config", srv.config_path,
                                  timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"is a symbolic link", r.stderr)
            with open(target) as f:
                self.assertEqual(f.read(), "precious\n")
        finally:
            srv.cleanup()


class MetricsTest(unittest.TestCase):
    def test_reloads_certificates_and_buckets(self):
        with kesctest.Server() as srv:
            self.assertTrue(srv.reload())
            srv.raw_config = "address: [not valid yaml"
            self.assertFalse(srv.reload())
            srv.raw_config = None
            srv.write_config()
            self.assertEqual(srv.request("GET", "/v1/key/describe/m").status, 404)
            text = metrics_text(srv)
            self.assertEqual(metric(text, "kesc_config_reloads_total", '{result="ok"}'), 1)
            self.assertEqual(metric(text, "kesc_config_reloads_total", '{result="failed"}'), 1)

            def not_after(name):
                out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                                      srv.certs.cert(name)], capture_output=True,
                                     check=True).stdout.decode()
                when = out.strip().split("=", 1)[1]
                return calendar.timegm(time.strptime(when, "%b %d %H:%M:%S %Y GMT"))
            self.assertEqual(
                metric(text, "kesc_tls_server_certificate_expiry_timestamp_seconds"),
                not_after("server"))
            self.assertEqual(
                metric(text, "kesc_tls_client_certificate_expiry_timestamp_seconds"),
                not_after("admin"))
            # µs-ms buckets before KES's, and a 404 from the cache-less path within 10 s.
            self.assertIsNotNone(metric(text, "kes_http_response_time_bucket", '{le="0.0005"}'))
            self.assertIsNotNone(metric(text, "kes_http_response_time_bucket", '{le="0.01"}'))
            self.assertEqual(metric(text, "kes_http_response_time_bucket", '{le="10"}'),
                             metric(text, "kes_http_response_time_count"))
            for family in ("kesc_tls_handshake_failures_total",
                           "kesc_connections_refused_total",
                           "kesc_log_audit_write_failures_total",
                           "kesc_log_error_lines_dropped_total"):
                self.assertIn("# TYPE %s counter" % family, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
