"""Shared helpers: Vault-style errors, JSON encoding as Go's json.Encoder, durations, times."""
import json
import re
import secrets
import time
import uuid

SYSTEM_DEFAULT_TTL = 768 * 3600   # Vault's default_lease_ttl / max_lease_ttl (32 days)
SYSTEM_MAX_TTL = 768 * 3600

# Exact core error texts (vault-api.md §1.6).
PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n"
INVALID_TOKEN = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
UNSUPPORTED_PATH = "1 error occurred:\n\t* unsupported path\n\n"
UNSUPPORTED_OPERATION = "1 error occurred:\n\t* unsupported operation\n\n"
SEALED = "Vault is sealed"
NAMESPACE_LOCKED = "API access to this namespace has been locked by an administrator"


class VaultError(Exception):
    """An error answered as {"errors":[...]} with the given status."""

    def __init__(self, status, message=None):
        super().__init__(message)
        self.status = status
        self.errors = [] if message is None else [message]


def bad_request(msg):
    return VaultError(400, msg)


def denied():
    return VaultError(403, PERMISSION_DENIED)


def unsupported_path():
    return VaultError(404, UNSUPPORTED_PATH)


def unsupported_operation():
    return VaultError(405, UNSUPPORTED_OPERATION)


class Resp:
    """A logical response; rendered into Vault's envelope by the HTTP layer."""

    def __init__(self, data=None, auth=None, warnings=None, status=200,
                 lease_duration=0, renewable=False, inject=False, raw=None):
        self.data = data
        self.auth = auth
        self.warnings = warnings
        self.status = status
        self.lease_duration = lease_duration
        self.renewable = renewable
        self.inject = inject      # copy data keys to the top level (sys/mounts etc.)
        self.raw = raw            # raw body (sys/health) instead of the envelope


def go_json(obj):
    """Encode like Go's json.Encoder: compact, HTML-escaped, trailing newline."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return (s + "\n").encode("utf-8")


def new_uuid():
    return str(uuid.uuid4())


def new_token(prefix="hvs."):
    return prefix + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(v, field="ttl"):
    """Vault's ParseDurationSecond: int seconds, "300", or a Go duration ("1h30m")."""
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise bad_request("error converting input %s for field \"%s\": invalid duration" % (v, field))
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"-?\d+", s):
            return int(s)
        pos, total = 0, 0.0
        for m in _DUR_RE.finditer(s):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
            pos = m.end()
        if pos == len(s) and pos > 0:
            return int(total)
    raise bad_request("error converting input %s for field \"%s\": time: invalid duration %s"
                      % (v, field, json.dumps(v)))


def go_duration(seconds):
    """Format whole seconds as Go's time.Duration.String()."""
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


def rfc3339nano(ns=None):
    """UTC RFC3339Nano with trailing fractional zeros trimmed, as protobuf/Go print it."""
    if ns is None:
        ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        base += "." + ("%09d" % frac).rstrip("0")
    return base + "Z"


def parse_bool(v, field):
    """Go strconv.ParseBool plus JSON booleans (mapstructure weak decoding)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        if v in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if v in ("0", "f", "F", "FALSE", "false", "False"):
            return False
    raise bad_request("error converting input %s for field \"%s\": cannot parse" % (v, field))


def parse_int(v, field):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == int(v):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v.strip())
    raise bad_request("error converting input %s for field \"%s\": cannot parse" % (v, field))


def parse_str_list(v, field):
    """Vault's TypeCommaStringSlice: array of strings or a comma-separated string."""
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return [x.strip() for x in v if x.strip()]
    raise bad_request("error converting input for field \"%s\": expected a list of strings" % field)
