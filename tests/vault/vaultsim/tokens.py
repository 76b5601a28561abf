"""Token store: service tokens with wall-clock TTLs, max TTLs, periods and parent/child revocation."""
import time

from .util import SYSTEM_DEFAULT_TTL, SYSTEM_MAX_TTL, go_duration, new_token, new_uuid, bad_request


class Token:
    def __init__(self, ns, policies, path, ttl, max_ttl=0, explicit_max_ttl=0, period=0,
                 renewable=True, meta=None, display_name="token", orphan=True, parent=None,
                 num_uses=0, token_id=None):
        now = time.time()
        self.id = token_id or new_token()
        self.accessor = new_uuid().replace("-", "")[:24]
        self.ns = ns
        self.policies = list(policies)
        self.path = path
        self.meta = meta
        self.display_name = display_name
        self.orphan = orphan
        self.parent = parent
        self.num_uses = num_uses
        self.creation_time = now
        self.period = period
        self.explicit_max_ttl = explicit_max_ttl
        self.renewable = renewable
        self.entity_id = "" if "root" in policies else new_uuid()
        self.last_renewal = None
        if period:
            ttl = period
        caps = [c for c in (max_ttl if not period else 0, explicit_max_ttl) if c]
        self.max_expire = now + min(caps) if caps else None
        if ttl and caps:
            ttl = min(ttl, min(caps))
        self.ttl = ttl                       # creation TTL; 0 = never expires
        self.expire_at = now + ttl if ttl else None

    def is_root(self):
        return "root" in self.policies

    def expired(self, now=None):
        return self.expire_at is not None and (now or time.time()) >= self.expire_at

    def remaining(self):
        if self.expire_at is None:
            return 0
        return max(0, int(round(self.expire_at - time.time())))

    def auth(self):
        """The HTTPAuth object of vault-api.md §1.4, in Go's field order."""
        return {
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": self.policies,
            "token_policies": self.policies,
            "metadata": self.meta,
            "lease_duration": self.remaining() if self.expire_at else 0,
            "renewable": self.renewable and self.expire_at is not None,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": self.orphan,
            "mfa_requirement": None,
            "num_uses": self.num_uses,
        }

    def lookup(self):
        d = {
            "accessor": self.accessor,
            "creation_time": int(self.creation_time),
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": _rfc3339(self.expire_at) if self.expire_at else None,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": self.id,
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": self.policies,
            "ttl": self.remaining(),
            "type": "service",
        }
        if self.expire_at is not None:
            d["issue_time"] = _rfc3339(self.creation_time)
            d["renewable"] = self.renewable
        if self.last_renewal is not None:
            d["last_renewal"] = _rfc3339(self.last_renewal)
            d["last_renewal_time"] = int(self.last_renewal)
        if self.period:
            d["period"] = self.period
        if self.ns:
            d["namespace_path"] = self.ns
        return d

    def renew(self, increment):
        """Extends the TTL like Vault's token renewal; returns warnings."""
        if not self.renewable or self.expire_at is None:
            raise bad_request("lease is not renewable")
        now = time.time()
        inc = self.period or increment or self.ttl
        warnings = None
        if self.max_expire is not None and now + inc > self.max_expire:
            left = max(0, int(self.max_expire - now))
            warnings = ['TTL of "%s" exceeded the effective max_ttl of "%s"; TTL value is capped accordingly'
                        % (go_duration(inc), go_duration(left))]
            inc = left
        self.expire_at = now + inc
        self.last_renewal = now
        return warnings


def _rfc3339(ts):
    frac = ("%.9f" % (ts % 1))[2:].rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ("." + frac if frac else "") + "Z"


class TokenStore:
    def __init__(self):
        self.by_id = {}

    def add(self, tok):
        self.by_id[tok.id] = tok
        return tok

    def get(self, token_id):
        tok = self.by_id.get(token_id)
        if tok is None:
            return None
        if tok.expired():
            self.revoke(tok)
            return None
        return tok

    def revoke(self, tok):
        self.by_id.pop(tok.id, None)
        for child in [t for t in self.by_id.values() if t.parent == tok.id]:
            self.revoke(child)

    def revoke_namespace(self, ns):
        for tok in [t for t in self.by_id.values() if t.ns == ns or t.ns.startswith(ns)]:
            self.by_id.pop(tok.id, None)

    def expire_all_nonroot(self):
        now = time.time()
        for tok in self.by_id.values():
            if not tok.is_root():
                tok.expire_at = now - 1


def token_params(role, prefix="token_"):
    """Token fields of a role (AppRole/Kubernetes) in seconds."""
    return dict(ttl=role.get(prefix + "ttl", 0) or SYSTEM_DEFAULT_TTL,
                max_ttl=role.get(prefix + "max_ttl", 0) or SYSTEM_MAX_TTL,
                explicit_max_ttl=role.get(prefix + "explicit_max_ttl", 0),
                period=role.get(prefix + "period", 0),
                num_uses=role.get(prefix + "num_uses", 0))


def with_default(policies, no_default=False):
    pols = set(p for p in policies if p)
    if "root" in pols:
        return sorted(pols)
    if not no_default:
        pols.add("default")
    return sorted(pols)
