#!/usr/bin/env python3
"""Vault-compatible test server (see tests/vault/README.md).

python3 tests/vault/vault_server.py --listen 127.0.0.1:0 --ready-file PATH [--root-token TOKEN]
    [--tls-cert CERT --tls-key KEY [--client-ca CA]] [--log FILE]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vaultsim.httpd import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
