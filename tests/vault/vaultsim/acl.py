"""ACL policies: a small HCL/JSON policy parser and Vault's path matcher (vault-api.md §9)."""
import base64
import binascii
import json
import re

from .util import bad_request

CAPABILITIES = {"create", "read", "update", "patch", "delete", "list", "sudo", "deny",
                "subscribe", "recover"}

DEFAULT_POLICY = '''
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/tools/hash" { capabilities = ["update"] }
path "sys/tools/hash/*" { capabilities = ["update"] }
'''

_TOKEN_RE = re.compile(r'''
    (?P<ws>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<heredoc><<-?(?P<tag>[A-Za-z_]+)\n.*?\n\s*(?P=tag)(?=\n|$))
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_\-.]*)
  | (?P<punct>[{}\[\]=,:])
''', re.S | re.X)


def _tokenize(text):
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise bad_request("failed to parse policy: At %d: illegal char" % line)
        pos = m.end()
        if m.group("ws") is not None:
            continue
        if m.group("str") is not None:
            try:
                toks.append(("str", json.loads(m.group("str"))))
            except ValueError:
                raise bad_request("failed to parse policy: invalid string %s" % m.group("str"))
        elif m.group("heredoc") is not None:
            body = m.group("heredoc").split("\n", 1)[1].rsplit("\n", 1)[0]
            toks.append(("str", body))
        elif m.group("num") is not None:
            toks.append(("num", m.group("num")))
        elif m.group("ident") is not None:
            toks.append(("ident", m.group("ident")))
        else:
            toks.append(("punct", m.group("punct")))
    return toks


class _Parser:
    """Parses the HCL subset policies use: blocks, attributes, lists, strings, numbers."""

    def __init__(self, toks):
        self.toks, self.i = toks, 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, kind=None, val=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (val and tok[1] != val):
            raise bad_request("failed to parse policy: unexpected token %r" % (tok[1],))
        self.i += 1
        return tok

    def body(self, end=None):
        """Returns a list of (key, labels, value) items until `end` punct or EOF."""
        items = []
        while True:
            kind, val = self.peek()
            if kind is None:
                if end:
                    raise bad_request("failed to parse policy: unexpected end of input")
                return items
            if kind == "punct" and val == end:
                self.i += 1
                return items
            if kind not in ("ident", "str"):
                raise bad_request("failed to parse policy: unexpected token %r" % (val,))
            self.i += 1
            labels = []
            while self.peek()[0] == "str":
                labels.append(self.take()[1])
            kind2, val2 = self.peek()
            if kind2 == "punct" and val2 == "=":
                self.i += 1
                items.append((val, labels, self.value()))
            elif kind2 == "punct" and val2 == "{":
                self.i += 1
                items.append((val, labels, self.body("}")))
            else:
                raise bad_request("failed to parse policy: expected '=' or '{' after %r" % (val,))
            if self.peek() == ("punct", ","):
                self.i += 1

    def value(self):
        kind, val = self.take()
        if kind == "str":
            return val
        if kind == "num":
            return float(val) if "." in val else int(val)
        if kind == "ident" and val in ("true", "false"):
            return val == "true"
        if kind == "punct" and val == "[":
            out = []
            while self.peek() != ("punct", "]"):
                out.append(self.value())
                if self.peek() == ("punct", ","):
                    self.i += 1
                elif self.peek() != ("punct", "]"):
                    raise bad_request("failed to parse policy: expected ',' or ']'")
            self.i += 1
            return out
        if kind == "punct" and val == "{":
            return dict((k, v) for k, _, v in self.body("}"))
        raise bad_request("failed to parse policy: unexpected token %r" % (val,))


def _rules_from_json(obj):
    paths = obj.get("path", {}) if isinstance(obj, dict) else None
    if not isinstance(paths, dict):
        raise bad_request("failed to parse policy: path must be an object")
    out = []
    for pat, spec in paths.items():
        if not isinstance(spec, dict):
            raise bad_request("failed to parse policy: path \"%s\" must be an object" % pat)
        out.append((pat, spec.get("capabilities", []), spec.get("policy")))
    return out


def _rules_from_hcl(text):
    out = []
    for key, labels, value in _Parser(_tokenize(text)).body():
        if key == "name":
            continue
        if key != "path":
            raise bad_request('failed to parse policy: invalid key "%s" on line 1' % key)
        if len(labels) != 1 or not isinstance(value, list):
            raise bad_request("failed to parse policy: path block needs one quoted label")
        attrs = dict((k, v) for k, _, v in value)
        out.append((labels[0], attrs.get("capabilities", []), attrs.get("policy")))
    return out


_LEGACY = {"deny": ["deny"], "read": ["read", "list"], "write": ["create", "read", "update", "delete", "list"],
           "sudo": ["create", "read", "update", "delete", "list", "sudo"]}


def parse_policy(text):
    """Parses policy text (HCL, JSON, or base64 of either) into {pattern: set(caps)}."""
    stripped = text.strip()
    if stripped and not stripped.startswith(("{", "path", "#", "//", "/*", "name")):
        try:
            text = base64.b64decode(stripped, validate=True).decode("utf-8")
            stripped = text.strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    if stripped.startswith("{"):
        try:
            rules = _rules_from_json(json.loads(stripped))
        except json.JSONDecodeError as e:
            raise bad_request("failed to parse policy: %s" % e)
    else:
        rules = _rules_from_hcl(text)
    table = {}
    for pattern, caps, legacy in rules:
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise bad_request("failed to parse policy: capabilities must be a list of strings")
        caps = set(c.lower() for c in caps)
        if legacy:
            caps |= set(_LEGACY.get(legacy, []))
        bad = caps - CAPABILITIES
        if bad:
            raise bad_request('failed to parse policy: path "%s": invalid capability "%s"'
                              % (pattern, sorted(bad)[0]))
        pattern = pattern.lstrip("/")
        if "*" in pattern[:-1]:
            raise bad_request('failed to parse policy: path "%s": invalid use of wildcards ("*" is only '
                              'supported as the last character)' % pattern)
        table.setdefault(pattern, set()).update(caps)
    return table


def _pattern_regex(pattern):
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    parts = [("[^/]*" if seg == "+" else re.escape(seg)) for seg in body.split("/")]
    return re.compile("/".join(parts) + (".*" if glob else "") + r"\Z", re.S)


def _priority_key(pattern):
    """Sort key: larger is higher priority (vault-api.md §9 rule 4)."""
    first = len(pattern)
    for i, ch in enumerate(pattern):
        if ch == "*" or (ch == "+" and _is_plus_segment(pattern, i)):
            first = i
            break
    plus = sum(1 for seg in pattern.rstrip("*").split("/") if seg == "+")
    return (first, 0 if pattern.endswith("*") else 1, -plus, len(pattern), pattern)


def _is_plus_segment(pattern, i):
    return (i == 0 or pattern[i - 1] == "/") and (i + 1 == len(pattern) or pattern[i + 1] in "/*")


def _is_wild(pattern):
    if pattern.endswith("*"):
        return True
    return any(seg == "+" for seg in pattern.split("/"))


class ACL:
    """The merged rule table of a token's policies."""

    def __init__(self, tables):
        self.root = False
        self.exact, self.wild = {}, {}
        for t in tables:
            if t == "root":
                self.root = True
                continue
            for pat, caps in t.items():
                dest = self.wild if _is_wild(pat) else self.exact
                dest.setdefault(pat, set()).update(caps)
        self.ordered = sorted(((_priority_key(p), p, _pattern_regex(p), c) for p, c in self.wild.items()),
                              key=lambda x: x[0], reverse=True)

    def _match_wild(self, path):
        for _, _, rx, caps in self.ordered:
            if rx.match(path):
                return caps
        return None

    def capabilities(self, path, is_list=False):
        if self.root:
            return {"root"}
        if path in self.exact:
            return self.exact[path]
        if is_list and path.endswith("/") and path[:-1] in self.exact:
            return self.exact[path[:-1]]
        caps = self._match_wild(path)
        if caps is None and is_list and path.endswith("/"):
            caps = self._match_wild(path[:-1])
        return caps or set()

    def allowed(self, path, cap, is_list=False, sudo=False):
        if self.root:
            return True
        caps = self.capabilities(path, is_list)
        if "deny" in caps or cap not in caps:
            return False
        return not sudo or "sudo" in caps
