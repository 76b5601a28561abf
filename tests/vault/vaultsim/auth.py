"""Auth methods: token store endpoints, AppRole and Kubernetes (vault-api.md §5, §6, §8)."""
import base64
import binascii
import json
import secrets
import time

from .backend import Backend
from .tokens import Token, token_params, with_default
from .util import (SYSTEM_DEFAULT_TTL, SYSTEM_MAX_TTL, Resp, VaultError, bad_request, new_uuid,
                   parse_bool, parse_duration, parse_int, parse_str_list, unsupported_operation,
                   unsupported_path)


class TokenBackend(Backend):
    def needs_sudo(self, req):
        return req.sub in ("create", "create-orphan") and bool(req.data.get("no_parent")) \
            or req.sub == "accessors/"

    def handle(self, req):
        sub, tok = req.sub, req.token
        if sub == "lookup-self":
            self.ops(req, ("read", "update"))
            return Resp(data=tok.lookup())
        if sub == "lookup":
            self.ops(req, ("update", "read"))
            want = req.data.get("token")
            other = self.core.tokens.get(want) if isinstance(want, str) and want else None
            if other is None or other.ns != self.ns.path:
                raise VaultError(403, "bad token")
            return Resp(data=other.lookup())
        if sub == "renew-self":
            self.ops(req, ("update",))
            inc = parse_duration(req.data.get("increment"), "increment")
            warnings = tok.renew(inc)
            return Resp(auth=tok.auth(), warnings=warnings)
        if sub == "revoke-self":
            self.ops(req, ("update",))
            self.core.tokens.revoke(tok)
            return None
        if sub in ("create", "create-orphan"):
            self.ops(req, ("update",))
            return self.create(req, orphan=(sub == "create-orphan"))
        raise unsupported_path()

    def create(self, req, orphan):
        d, parent = req.data, req.token
        if d.get("id") is not None and not isinstance(d.get("id"), str):
            raise bad_request("error converting input for field \"id\": expected a string")
        if d.get("id") and d["id"] in self.core.tokens.by_id:
            raise bad_request("cannot create a token with a duplicate ID")
        policies = parse_str_list(d.get("policies"), "policies") or list(parent.policies)
        if not parent.is_root() and not set(policies) <= set(parent.policies) | {"default"}:
            raise bad_request("child policies must be subset of parent")
        pols = with_default(policies, parse_bool(d.get("no_default_policy", False), "no_default_policy"))
        ttl = parse_duration(d.get("ttl"), "ttl")
        explicit = parse_duration(d.get("explicit_max_ttl"), "explicit_max_ttl")
        period = parse_duration(d.get("period"), "period")
        if not ttl and not period and "root" not in pols:
            ttl = SYSTEM_DEFAULT_TTL
        renewable = parse_bool(d.get("renewable", True), "renewable")
        meta = d.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise bad_request("error converting input for field \"meta\"")
        no_parent = orphan or parse_bool(d.get("no_parent", False), "no_parent")
        tok = Token(self.ns.path, pols, "auth/token/create", ttl,
                    max_ttl=SYSTEM_MAX_TTL if ttl else 0, explicit_max_ttl=explicit,
                    period=period, renewable=renewable,
                    meta={str(k): str(v) for k, v in meta.items()} if meta else None,
                    display_name="token" + ("-" + d["display_name"] if d.get("display_name") else ""),
                    orphan=no_parent, parent=None if no_parent else parent.id,
                    num_uses=parse_int(d.get("num_uses", 0), "num_uses"), token_id=d.get("id") or None)
        if parent.expire_at is not None and not no_parent and tok.expire_at and tok.expire_at > parent.expire_at:
            tok.expire_at = parent.expire_at
        self.core.tokens.add(tok)
        warnings = ['Policy "%s" does not exist' % p for p in pols
                    if p not in ("root", "default") and p not in self.ns.policies] or None
        return Resp(auth=tok.auth(), warnings=warnings)


def _role_token_fields(d, role):
    for name in ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"):
        if name in d:
            role[name] = parse_duration(d[name], name)
    if "period" in d:
        role["token_period"] = parse_duration(d["period"], "period")
    if "token_num_uses" in d:
        role["token_num_uses"] = parse_int(d["token_num_uses"], "token_num_uses")
    if "token_no_default_policy" in d:
        role["token_no_default_policy"] = parse_bool(d["token_no_default_policy"], "token_no_default_policy")
    for name in ("token_policies", "policies"):
        if name in d:
            role["token_policies"] = parse_str_list(d[name], name)


def _issue(backend, role, path, meta):
    p = token_params(role)
    tok = Token(backend.ns.path, with_default(role.get("token_policies", []), role.get("token_no_default_policy")),
                path, p["ttl"], max_ttl=p["max_ttl"], explicit_max_ttl=p["explicit_max_ttl"],
                period=p["period"], renewable=True, meta=meta, display_name=backend.mpath[5:].strip("/"),
                num_uses=p["num_uses"])
    backend.core.tokens.add(tok)
    return Resp(auth=tok.auth())


class AppRole(Backend):
    def __init__(self, core, ns, mpath):
        super().__init__(core, ns)
        self.mpath = mpath
        self.roles = {}

    def unauthenticated(self, req):
        return req.sub == "login"

    def existence(self, req):
        parts = req.sub.split("/")
        if len(parts) == 2 and parts[0] == "role":
            return parts[1].lower() in self.roles
        return None

    def handle(self, req):
        parts = req.sub.split("/")
        if req.sub == "login":
            self.ops(req, ("update",))
            return self.login(req)
        if parts[0] == "role" and (len(parts) == 1 or parts[1] == ""):
            self.ops(req, ("list",))
            return Resp(data={"keys": sorted(self.roles)})
        if parts[0] != "role":
            raise unsupported_path()
        name = parts[1].lower()
        if len(parts) == 2:
            return self.role(req, name)
        role = self.roles.get(name)
        what = "/".join(parts[2:]).rstrip("/")
        if role is None:
            if req.op == "read":
                return None
            raise bad_request('role "%s" does not exist' % name)
        if what == "role-id":
            if req.op == "read":
                return Resp(data={"role_id": role["role_id"]})
            self.ops(req, ("update",))
            rid = req.data.get("role_id")
            if not isinstance(rid, str) or not rid:
                raise bad_request("missing role_id")
            role["role_id"] = rid
            return None
        if what in ("secret-id", "custom-secret-id"):
            if req.op == "list":
                return Resp(data={"keys": sorted(s["accessor"] for s in role["secret_ids"].values())})
            self.ops(req, ("update",))
            return self.new_secret_id(req, role, req.data.get("secret_id") if what == "custom-secret-id" else None)
        if what == "secret-id/destroy":
            self.ops(req, ("update", "delete"))
            role["secret_ids"].pop(req.data.get("secret_id") or "", None)
            return None
        if what in ("secret-id/lookup", "secret-id-accessor/lookup", "secret-id-accessor/destroy"):
            self.ops(req, ("update",))
            sid = self._find_secret_id(req, role, by_accessor=what.startswith("secret-id-accessor"))
            if sid is None:
                if what == "secret-id/lookup":
                    return None
                raise bad_request("failed to find accessor entry for secret_id_accessor: %s"
                                  % json.dumps(req.data.get("secret_id_accessor")))
            if what.endswith("destroy"):
                del role["secret_ids"][sid]
                return None
            return Resp(data=_secret_id_info(role["secret_ids"][sid]))
        raise unsupported_path()

    def role(self, req, name):
        role = self.roles.get(name)
        if req.op == "read":
            if role is None:
                return None
            return Resp(data={
                "bind_secret_id": role["bind_secret_id"], "secret_id_bound_cidrs": [],
                "secret_id_num_uses": role["secret_id_num_uses"], "secret_id_ttl": role["secret_id_ttl"],
                "token_bound_cidrs": [], "token_explicit_max_ttl": role.get("token_explicit_max_ttl", 0),
                "token_max_ttl": role.get("token_max_ttl", 0), "token_no_default_policy": role.get(
                    "token_no_default_policy", False), "token_num_uses": role.get("token_num_uses", 0),
                "token_period": role.get("token_period", 0), "period": role.get("token_period", 0),
                "token_policies": role.get("token_policies", []), "policies": role.get("token_policies", []),
                "token_ttl": role.get("token_ttl", 0), "token_type": "default", "local_secret_ids": False})
        if req.op == "delete":
            self.roles.pop(name, None)
            return None
        if req.op not in ("update", "create"):
            raise unsupported_operation()
        if role is None:
            role = {"role_id": new_uuid(), "bind_secret_id": True, "secret_id_ttl": 0,
                    "secret_id_num_uses": 0, "secret_ids": {}}
        d = req.data
        if "bind_secret_id" in d:
            role["bind_secret_id"] = parse_bool(d["bind_secret_id"], "bind_secret_id")
        if "secret_id_ttl" in d:
            role["secret_id_ttl"] = parse_duration(d["secret_id_ttl"], "secret_id_ttl")
        if "secret_id_num_uses" in d:
            role["secret_id_num_uses"] = parse_int(d["secret_id_num_uses"], "secret_id_num_uses")
        _role_token_fields(d, role)
        if role.get("token_max_ttl") and role.get("token_ttl", 0) > role["token_max_ttl"]:
            raise bad_request("token_ttl should not be greater than token_max_ttl")
        self.roles[name] = role
        return None

    def new_secret_id(self, req, role, custom):
        d = req.data
        ttl = parse_duration(d["ttl"], "ttl") if "ttl" in d else role["secret_id_ttl"]
        uses = parse_int(d["num_uses"], "num_uses") if "num_uses" in d else role["secret_id_num_uses"]
        if role["secret_id_ttl"] and (ttl == 0 or ttl > role["secret_id_ttl"]):
            ttl = role["secret_id_ttl"]
        meta = d.get("metadata")
        if isinstance(meta, str) and meta:
            try:
                meta = json.loads(meta)
            except ValueError:
                raise bad_request("failed to parse metadata")
        sid = custom or new_uuid()
        if not isinstance(sid, str):
            raise bad_request("missing secret_id")
        entry = {"accessor": new_uuid(), "expire": time.time() + ttl if ttl else None, "uses": uses,
                 "created": time.time(), "ttl": ttl,
                 "metadata": {str(k): str(v) for k, v in (meta or {}).items()} if isinstance(meta, dict) else {}}
        role["secret_ids"][sid] = entry
        return Resp(data={"secret_id": sid, "secret_id_accessor": entry["accessor"], "secret_id_ttl": ttl,
                          "secret_id_num_uses": uses})

    @staticmethod
    def _find_secret_id(req, role, by_accessor):
        now = time.time()
        for sid, e in role["secret_ids"].items():
            if e["expire"] is not None and now >= e["expire"]:
                continue
            if (e["accessor"] == req.data.get("secret_id_accessor")) if by_accessor else (sid == req.data.get("secret_id")):
                return sid
        return None

    def login(self, req):
        rid, sid = req.data.get("role_id"), req.data.get("secret_id")
        if not isinstance(rid, str) or not rid:
            raise bad_request("missing role_id")
        found = next(((n, r) for n, r in self.roles.items() if secrets.compare_digest(r["role_id"], rid)), None)
        if found is None:
            raise bad_request("invalid role or secret ID")
        name, role = found
        meta = {"role_name": name}
        if role["bind_secret_id"]:
            if not isinstance(sid, str) or not sid:
                raise bad_request("missing secret_id")
            entry = role["secret_ids"].get(sid)
            if entry is None or (entry["expire"] is not None and time.time() >= entry["expire"]):
                role["secret_ids"].pop(sid, None)
                raise bad_request("invalid role or secret ID")
            meta.update(entry["metadata"])
            if entry["uses"] > 0:
                entry["uses"] -= 1
                if entry["uses"] == 0:
                    del role["secret_ids"][sid]
        return _issue(self, role, "auth/" + self.mpath[5:] + "login", meta)


def _ts(t):
    if t is None:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def _secret_id_info(e):
    return {"cidr_list": [], "creation_time": _ts(e["created"]), "expiration_time": _ts(e["expire"]),
            "last_updated_time": _ts(e["created"]), "metadata": e["metadata"],
            "secret_id_accessor": e["accessor"], "secret_id_num_uses": e["uses"], "secret_id_ttl": e["ttl"],
            "token_bound_cidrs": []}


def _b64url(s):
    s += "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode("ascii"))


def jwt_claims(jwt):
    """Decodes a JWT's payload without verifying the signature (test server only)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def sa_identity(claims):
    """(name, namespace, uid, secret_name) from legacy or projected service-account tokens."""
    k8s = claims.get("kubernetes.io")
    if isinstance(k8s, dict):
        sa = k8s.get("serviceaccount") or {}
        return sa.get("name"), k8s.get("namespace"), sa.get("uid", ""), ""
    return (claims.get("kubernetes.io/serviceaccount/service-account.name"),
            claims.get("kubernetes.io/serviceaccount/namespace"),
            claims.get("kubernetes.io/serviceaccount/service-account.uid", ""),
            claims.get("kubernetes.io/serviceaccount/secret.name", ""))


class Kubernetes(Backend):
    def __init__(self, core, ns, mpath):
        super().__init__(core, ns)
        self.mpath = mpath
        self.config = None
        self.roles = {}

    def unauthenticated(self, req):
        return req.sub == "login"

    def existence(self, req):
        parts = req.sub.split("/")
        if len(parts) == 2 and parts[0] == "role":
            return parts[1] in self.roles
        return None

    def handle(self, req):
        parts = req.sub.split("/")
        if req.sub == "login":
            self.ops(req, ("update",))
            return self.login(req)
        if req.sub == "config":
            if req.op == "read":
                return Resp(data=dict(self.config)) if self.config is not None else None
            self.ops(req, ("update",))
            host = req.data.get("kubernetes_host")
            if not isinstance(host, str) or not host:
                raise bad_request("no host provided")
            self.config = {"kubernetes_host": host, "kubernetes_ca_cert": req.data.get("kubernetes_ca_cert", ""),
                           "disable_local_ca_jwt": bool(req.data.get("disable_local_ca_jwt", False)),
                           "issuer": req.data.get("issuer", "")}
            return None
        if parts[0] == "role" and (len(parts) == 1 or parts[1] == ""):
            self.ops(req, ("list",))
            return Resp(data={"keys": sorted(self.roles)})
        if parts[0] == "role" and len(parts) == 2:
            return self.role(req, parts[1])
        raise unsupported_path()

    def role(self, req, name):
        if req.op == "read":
            role = self.roles.get(name)
            if role is None:
                return None
            return Resp(data={
                "bound_service_account_names": role["names"], "bound_service_account_namespaces": role["namespaces"],
                "token_policies": role.get("token_policies", []), "policies": role.get("token_policies", []),
                "token_ttl": role.get("token_ttl", 0), "ttl": role.get("token_ttl", 0),
                "token_max_ttl": role.get("token_max_ttl", 0), "max_ttl": role.get("token_max_ttl", 0),
                "token_period": role.get("token_period", 0), "audience": role.get("audience", "")})
        if req.op == "delete":
            self.roles.pop(name, None)
            return None
        if req.op not in ("update", "create"):
            raise unsupported_operation()
        role = self.roles.get(name, {"names": [], "namespaces": []})
        d = dict(req.data)
        for alias, real in (("ttl", "token_ttl"), ("max_ttl", "token_max_ttl")):
            if alias in d and real not in d:
                d[real] = d[alias]
        if "bound_service_account_names" in d:
            role["names"] = parse_str_list(d["bound_service_account_names"], "bound_service_account_names")
        if "bound_service_account_namespaces" in d:
            role["namespaces"] = parse_str_list(d["bound_service_account_namespaces"],
                                                "bound_service_account_namespaces")
        if not role["names"]:
            raise bad_request('"bound_service_account_names" can not be empty')
        if not role["namespaces"]:
            raise bad_request('"bound_service_account_namespaces" can not be empty')
        if "audience" in d:
            role["audience"] = str(d["audience"])
        _role_token_fields(d, role)
        self.roles[name] = role
        return None

    def login(self, req):
        name, jwt = req.data.get("role"), req.data.get("jwt")
        if not isinstance(name, str) or not name:
            raise bad_request("missing role")
        if not isinstance(jwt, str) or not jwt:
            raise bad_request("missing jwt")
        role = self.roles.get(name)
        if role is None:
            raise bad_request('invalid role name "%s"' % name)
        if self.config is None:
            raise bad_request("could not load backend configuration")
        claims = jwt_claims(jwt)
        if claims is None:
            raise VaultError(403, "permission denied")
        sa_name, sa_ns, uid, secret_name = sa_identity(claims)
        if not isinstance(sa_name, str) or not isinstance(sa_ns, str):
            raise VaultError(403, "permission denied")
        if "*" not in role["names"] and sa_name not in role["names"]:
            raise VaultError(403, "service account name not authorized")
        if "*" not in role["namespaces"] and sa_ns not in role["namespaces"]:
            raise VaultError(403, "namespace not authorized")
        meta = {"role": name, "service_account_name": sa_name, "service_account_namespace": sa_ns,
                "service_account_secret_name": secret_name or "", "service_account_uid": uid or ""}
        return _issue(self, role, "auth/" + self.mpath[5:] + "login", meta)
