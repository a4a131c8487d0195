"""Admin for signing keys (rotate, revoke)."""
