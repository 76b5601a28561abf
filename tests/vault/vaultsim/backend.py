"""Base class of every mounted backend."""
from .util import unsupported_operation, unsupported_path


class Backend:
    def __init__(self, core, ns):
        self.core = core
        self.ns = ns

    def unauthenticated(self, req):
        """True for paths that need no token (logins)."""
        return False

    def existence(self, req):
        """True/False decides create vs update for writes; None means always update."""
        return None

    def skip_acl(self, req):
        """True for paths that do their own authorization after authentication."""
        return False

    def needs_sudo(self, req):
        return False

    def handle(self, req):
        raise unsupported_path()

    @staticmethod
    def ops(req, allowed):
        if req.op not in allowed:
            raise unsupported_operation()

