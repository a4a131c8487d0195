"""TOTP devices for ministry operators and superusers (the admin's second factor)."""

import hashlib
import hmac
import os
from base64 import b32encode

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

DEMO_DEVICE_NAME = "demo"
DEFAULT_DEVICE_NAME = "authenticator"


def demo_totp_key(password: str) -> bytes:
    """Derive the demo operator's 20-byte TOTP secret from the demo password.

    The demo must stay usable across re-seeds without a stored secret: the same
    DEMO_PASSWORD always gives the same secret, so an authenticator app set up once
    keeps working. Production devices use random keys (`totp_enrol`).
    """
    return hmac.new(b"registry-demo-totp", password.encode(), hashlib.sha256).digest()[:20]


def totp_secret_and_uri(device: TOTPDevice) -> tuple[str, str]:
    """Return the device's secret (base32, as authenticator apps take it) and otpauth URI."""
    return b32encode(device.bin_key).decode(), device.config_url


@transaction.atomic
def ensure_demo_totp(user, *, password: str | None = None) -> tuple[str, str]:
    """Give `user` the confirmed demo TOTP device; return (base32 secret, otpauth URI).

    Idempotent: a second call leaves one device with the same secret. The secret
    derives from `password` (default: DEMO_PASSWORD, else "registry-demo").
    """
    password = password if password is not None else os.environ.get("DEMO_PASSWORD", "registry-demo")
    key = demo_totp_key(password).hex()
    device, _ = TOTPDevice.objects.update_or_create(
        user=user, name=DEMO_DEVICE_NAME, defaults={"key": key, "confirmed": True}
    )
    return totp_secret_and_uri(device)


@transaction.atomic
def totp_enrol(user, *, name: str = DEFAULT_DEVICE_NAME) -> tuple[str, str]:
    """Give `user` a new confirmed TOTP device with a random key, replacing one of the same name.

    Returns (base32 secret, otpauth URI) — shown once to be scanned into an
    authenticator app; only the device row keeps the key.
    """
    TOTPDevice.objects.filter(user=user, name=name).delete()
    device = TOTPDevice.objects.create(user=user, name=name, key=os.urandom(20).hex(), confirmed=True)
    return totp_secret_and_uri(device)


def demo_totp_device(username: str) -> TOTPDevice | None:
    """The demo device of `username`, if `ensure_demo_totp` made one."""
    return TOTPDevice.objects.filter(user__username=username, name=DEMO_DEVICE_NAME).first()
