"""HTTP(S) front end: threading server, /_test/ fault controls, stats, ready file, signals."""
import argparse
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .router import Core
from .util import go_json, new_token

MAX_BODY = 32 * 1024 * 1024


class Faults:
    """Fault injection and request statistics, driven through /_test/."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail = []            # [{"count", "status", "prefix", "method", "message", "after"}]
        self.latency_ms = 0
        self.latency_prefix = ""  # only requests whose path starts with this are delayed
        self.latency_method = ""  # ... and, when set, only this method
        self.drop = 0
        self.requests = 0
        self.by_path = {}

    def record(self, method, path):
        with self.lock:
            self.requests += 1
            key = "%s %s" % (method, path)
            self.by_path[key] = self.by_path.get(key, 0) + 1

    def take_drop(self):
        with self.lock:
            if self.drop > 0:
                self.drop -= 1
                return True
            return False

    def delay_for(self, method, path):
        with self.lock:
            if not self.latency_ms or not path.startswith(self.latency_prefix):
                return 0
            if self.latency_method and method != self.latency_method:
                return 0
            return self.latency_ms

    def take_fail(self, method, path):
        with self.lock:
            for f in self.fail:
                if f["method"] and f["method"] != method:
                    continue
                if f["count"] > 0 and path.startswith(f["prefix"]):
                    f["count"] -= 1
                    return f
            self.fail = [f for f in self.fail if f["count"] > 0]
            return None


def _fail_message(status, path):
    if status == 429:
        return 'request path "%s": rate limit quota exceeded' % path[4:]
    if status == 503:
        return "Vault is sealed"
    if status == 412:
        return "required index state not present"
    return "1 error occurred:\n\t* injected failure\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without NODELAY every reply on a reused
        # connection waits ~40 ms for the client's delayed ACK (Nagle), which made the Vault
        # keystore tests take minutes instead of seconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self):
        return "vaultsim"

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        self.server.log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        # Only method, path (without query) and status: never tokens or bodies.
        path = urllib.parse.urlsplit(self.path).path
        self.server.log("%s %s %s" % (self.command, path, code))

    def send(self, status, headers, body):
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self):
        core, faults = self.server.core, self.server.faults
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send(400, {"Content-Type": "application/json"}, go_json({"errors": ["bad request body"]}))
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_test/"):
            return self.send(*self.test_control(path, body or b""))
        faults.record(self.command, path)
        delay = faults.delay_for(self.command, path)
        if delay:
            time.sleep(delay / 1000.0)
        if faults.take_drop():
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if body is None:
            self.close_connection = True
            return self.send(413, {"Content-Type": "application/json"}, go_json({"errors": ["error parsing JSON"]}))
        f = faults.take_fail(self.command, path)
        if f is not None and f["after"]:
            # The request takes effect (a write is stored), then the answer is lost to a
            # failure: the ambiguous outcome a client must resolve by reading back.
            headers = {_canon(k): v for k, v in self.headers.items()}
            core.handle(self.command, self.path, headers, body, self.client_address[0])
        if f is not None:
            msg = f["message"] or _fail_message(f["status"], path)
            hdr = {"Content-Type": "application/json"}
            if f["retry_after"]:
                hdr["Retry-After"] = str(f["retry_after"])
            return self.send(f["status"], hdr, go_json({"errors": [msg]}))
        headers = {_canon(k): v for k, v in self.headers.items()}
        status, hdr, out = core.handle(self.command, self.path, headers, body, self.client_address[0])
        return self.send(status, hdr, out)

    def test_control(self, path, body):
        core, faults = self.server.core, self.server.faults
        hdr = {"Content-Type": "application/json"}
        tok = self.headers.get("X-Vault-Token") or ""
        if not tok or tok != core.root_token.id:
            return 403, hdr, go_json({"errors": ["permission denied"]})
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            return 400, hdr, go_json({"errors": ["error parsing JSON"]})
        method = self.command
        if path == "/_test/stats" and method == "GET":
            with faults.lock:
                return 200, hdr, go_json({"requests": faults.requests, "by_path": dict(faults.by_path)})
        if method not in ("POST", "PUT"):
            return 405, hdr, go_json({"errors": []})
        try:
            if path == "/_test/seal":
                with core.lock:
                    core.sealed = True
            elif path == "/_test/unseal":
                with core.lock:
                    core.sealed = False
            elif path == "/_test/fail":
                status = int(data.get("status", 503))
                if not 400 <= status <= 599:
                    raise ValueError
                method = _fault_method(data)
                after = data.get("after", False)
                if not isinstance(after, bool):
                    raise ValueError
                with faults.lock:
                    faults.fail.append({"count": int(data.get("count", 1)), "status": status,
                                        "prefix": str(data.get("path_prefix", "")),
                                        "method": method, "after": after,
                                        "message": data.get("message"),
                                        "retry_after": int(data.get("retry_after", 0))})
            elif path == "/_test/latency":
                method = _fault_method(data)
                with faults.lock:
                    faults.latency_ms = max(0, int(data.get("ms", 0)))
                    faults.latency_prefix = str(data.get("path_prefix", ""))
                    faults.latency_method = method
            elif path == "/_test/lock-namespace":
                # Vault Enterprise's namespace API lock (sys/namespaces/api-lock/lock): every
                # request into the namespace (and those below it) answers 503.
                name = data.get("namespace")
                locked = data.get("locked", True)
                if not isinstance(name, str) or not isinstance(locked, bool):
                    raise ValueError
                key = name.strip("/") + "/"
                with core.lock:
                    if key not in core.namespaces:
                        raise ValueError
                    core.namespaces[key].locked = locked
            elif path == "/_test/drop":
                with faults.lock:
                    faults.drop = max(0, int(data.get("count", 1)))
            elif path == "/_test/expire-tokens":
                with core.lock:
                    core.tokens.expire_all_nonroot()
            elif path == "/_test/stats/reset":
                with faults.lock:
                    faults.requests, faults.by_path = 0, {}
            elif path == "/_test/reset-faults":
                with faults.lock:
                    faults.fail, faults.drop, faults.latency_ms = [], 0, 0
                    faults.latency_prefix, faults.latency_method = "", ""
            else:
                return 404, hdr, go_json({"errors": []})
        except (TypeError, ValueError):
            return 400, hdr, go_json({"errors": ["invalid fault parameters"]})
        return 204, {}, b""


def _fault_method(data):
    """The optional "method" of a fault rule: an HTTP method in capitals, or "" for any."""
    method = data.get("method", "")
    if not isinstance(method, str) or (method and not method.isalpha()):
        raise ValueError
    return method.upper()


def _canon(name):
    return "-".join(p.capitalize() for p in name.split("-"))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128   # tests open many connections at once (KES uses one per request)

    def __init__(self, addr, core, tls_ctx, logfile, family):
        self.address_family = family
        self.core = core
        self.faults = Faults()
        self.tls_ctx = tls_ctx
        self.logfile = logfile
        self.log_lock = threading.Lock()
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls_ctx is not None:
            # Handshake in the worker thread (on first read), not in the accept loop.
            sock = self.tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        self.log("connection error from %s: %s" % (client_address[0], type(exc).__name__))

    def log(self, line):
        if self.logfile is None:
            return
        with self.log_lock:
            self.logfile.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), line))
            self.logfile.flush()


def parse_listen(value):
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit("vault_server: --listen must be HOST:PORT")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        raise SystemExit("vault_server: --listen host must be a loopback IP address")
    if not ip.is_loopback:
        raise SystemExit("vault_server: refusing to bind non-loopback address %s" % host)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return str(ip), int(port), family


def write_ready(path, url, token):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%s\n%s\n" % (url, token))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Vault-compatible test server (standard library only)")
    ap.add_argument("--listen", required=True, help="loopback HOST:PORT (port 0 = ephemeral)")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--root-token")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca")
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    host, port, family = parse_listen(args.listen)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("vault_server: --tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        raise SystemExit("vault_server: --client-ca needs --tls-cert/--tls-key")
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    logfile = open(args.log, "a") if args.log else None
    root = args.root_token or new_token()
    core = Core(root)
    srv = Server((host, port), core, ctx, logfile, family)
    core.log = srv.log
    actual_port = srv.server_address[1]
    shown = "[%s]" % host if family == socket.AF_INET6 else host
    url = "%s://%s:%d" % ("https" if ctx else "http", shown, actual_port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    worker.start()
    write_ready(args.ready_file, url, root)
    srv.log("listening on %s" % url)
    while not stop.wait(0.5):
        pass
    srv.shutdown()
    srv.server_close()
    srv.log("stopped")
    if logfile:
        logfile.close()
    return 0
