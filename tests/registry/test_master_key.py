"""REGISTRY_MASTER_KEY: required and well-formed in production, a local key (announced) in the demo."""

import base64
import logging
import os
import stat

import pytest
from cryptography.exceptions import InvalidTag
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from registry import crypto
from tests.security.test_settings import manage


@pytest.fixture
def fresh_crypto_caches():
    """Let a test see master_key() derive afresh, and leave the suite's key in place after."""
    crypto.master_key.cache_clear()
    crypto.subkey.cache_clear()
    yield
    crypto.master_key.cache_clear()
    crypto.subkey.cache_clear()


def test_demo_mode_creates_a_local_key_once_and_says_so(tmp_path, caplog, fresh_crypto_caches):
    with override_settings(REGISTRY_MASTER_KEY="", VAR_DIR=tmp_path), caplog.at_level(logging.WARNING):
        key = crypto.master_key()
        path = tmp_path / "master.key"
        assert len(key) == 32 and path.exists()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "REGISTRY_MASTER_KEY is not set: created the local demo key" in caplog.text
        ciphertext = crypto.encrypt(b"secret", purpose="test")

        # Another process (simulated by clearing the cache) reuses the file and says so again.
        caplog.clear()
        crypto.master_key.cache_clear()
        crypto.subkey.cache_clear()
        assert crypto.master_key() == key
        assert "using the local demo key" in caplog.text
        assert crypto.decrypt(ciphertext, purpose="test") == b"secret"


def test_data_encrypted_under_one_master_key_does_not_open_under_another(fresh_crypto_caches):
    first = base64.b64encode(b"1" * 32).decode()
    second = base64.b64encode(b"2" * 32).decode()
    with override_settings(REGISTRY_MASTER_KEY=first):
        ciphertext = crypto.encrypt(b"private key", purpose="signing-key-encryption-v1", associated=b"kid")
    crypto.master_key.cache_clear()
    crypto.subkey.cache_clear()
    with override_settings(REGISTRY_MASTER_KEY=second), pytest.raises(InvalidTag):
        crypto.decrypt(ciphertext, purpose="signing-key-encryption-v1", associated=b"kid")


@pytest.mark.parametrize("raw", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_master_key_is_refused(raw):
    with pytest.raises(ImproperlyConfigured, match="REGISTRY_MASTER_KEY"):
        crypto.master_key_decode(raw)


@pytest.mark.slow
def test_production_refuses_to_start_with_a_malformed_master_key(tmp_path):
    result = manage(tmp_path, "check", REGISTRY_MASTER_KEY=base64.b64encode(b"16 bytes only!!!").decode())
    assert result.returncode != 0
    assert "REGISTRY_MASTER_KEY must decode to 32 bytes" in result.stderr
