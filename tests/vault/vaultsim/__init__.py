"""vaultsim: a Vault-compatible HTTP test server built on the Python standard library."""
