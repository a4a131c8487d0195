"""Partner API keys: creation, revocation, authentication and idempotent requests.

A key reads `<prefix>.<secret>`. The prefix (public, unique) finds the row; only the
SHA-256 of the whole key is stored, and the key itself is shown once, when created.
The secret holds 256 random bits, so a plain hash is enough: there is nothing to
brute-force, and keys do not depend on the master key (rotating it keeps them valid).
"""

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable

from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from documents.history import event_record
from institutions.models import ApiIdempotencyKey, ApiKey, ApiKeyScope, Institution
from registry.actors import Actor
from registry.api.throttling import redis_client
from registry.errors import DomainError, ValidationFailed

PREFIX_BYTES = 6  # 12 hex characters: unique enough to find a row, short enough to show in lists
SECRET_BYTES = 32
# Writing last_used_at on every request would turn each read into a write; a minute's
# precision is all an operator needs to tell a live key from an abandoned one.
LAST_USED_PRECISION = dt.timedelta(minutes=1)
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Replaced (with a random token) on every change of any key: processes that remember
# keys (registry.api.keycache) drop them when it differs from what they read.
GENERATION_KEY = "api-keys:generation"

logger = logging.getLogger(__name__)


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was already used with a different request body.

    422 as in the IETF draft "The Idempotency-Key HTTP Header Field": the retry is
    not the same request, so replaying the first answer would mislead the caller.
    """

    code = "idempotency_key_reused"
    http_status = 422
    default_message = _("This Idempotency-Key was already used with a different request body.")


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_errors(*, scope: str, institution: Institution | None) -> dict:
    """Return {field: [message]} when the scope and the institution do not fit together."""
    if scope not in ApiKeyScope.values:
        return {"scope": [_("Choose the scope: verify or issue.")]}
    if scope == ApiKeyScope.ISSUE and institution is None:
        return {"institution": [_("An issue key acts for one institution: choose it.")]}
    if scope == ApiKeyScope.VERIFY and institution is not None:
        return {"institution": [_("A verify key belongs to no institution: leave it empty.")]}
    return {}


@transaction.atomic
def api_key_create(
    *, name: str, scope: str, institution: Institution | None = None, created_by=None
) -> tuple[ApiKey, str]:
    """Create a key and return (row, plaintext key). The plaintext is never stored or shown again."""
    name = (name or "").strip()
    errors = api_key_errors(scope=scope, institution=institution)
    if not name:
        errors["name"] = [_("Name the partner system this key is for.")]
    if errors:
        raise ValidationFailed(_("The key cannot be created."), errors=errors)
    # 48 random bits: a clash is vanishingly rare, and the unique index refuses one.
    prefix = secrets.token_hex(PREFIX_BYTES)
    plaintext = f"{prefix}.{secrets.token_urlsafe(SECRET_BYTES)}"
    row = ApiKey.objects.create(
        name=name[:200],
        prefix=prefix,
        key_hash=api_key_hash(plaintext),
        scope=scope,
        institution=institution,
        created_by=created_by,
    )
    event_record(
        actor=Actor.system("api_key_create", user=created_by),
        action="api_key.created",
        obj=row,
        institution_id=institution.pk if institution else None,
        data={"prefix": prefix, "scope": scope},
    )
    return row, plaintext


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, revoked_by=None) -> ApiKey:
    """Revoke a key from now on; revoking a revoked key changes nothing."""
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    if updated:
        api_keys_changed()
        event_record(
            actor=Actor.system("api_key_revoke", user=revoked_by),
            action="api_key.revoked",
            obj=api_key,
            institution_id=api_key.institution_id,
            data={"prefix": api_key.prefix},
        )
    return api_key


def api_key_prefix(key: str) -> str | None:
    """The prefix of a well-formed `<prefix>.<secret>` key, or None."""
    prefix, dot, secret = (key or "").partition(".")
    if not dot or not secret or not prefix.isalnum() or len(prefix) > 16:
        return None
    return prefix


def api_key_authenticate(key: str) -> ApiKey | None:
    """Return the live key row matching `key`, or None (unknown, wrong secret or revoked).

    The hash comparison is constant-time. Marks the key used, at most once a minute.
    Reads the database every time; the API authenticates through
    registry.api.keycache, which remembers rows between requests.
    """
    prefix = api_key_prefix(key)
    if prefix is None:
        return None
    # The prefix is unique; an issue key's institution is loaded when a view needs it.
    row = ApiKey.objects.filter(prefix=prefix).first()
    if row is None or not hmac.compare_digest(row.key_hash, api_key_hash(key)) or row.revoked_at is not None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        # Conditional, so concurrent requests of the same key write once per minute at most.
        ApiKey.objects.filter(pk=row.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        ).update(last_used_at=now)
        row.last_used_at = now
    return row


def _announce_change() -> None:
    client = redis_client()
    if client is None:  # without Redis no process remembers keys
        return
    try:
        client.set(caches["default"].make_and_validate_key(GENERATION_KEY), secrets.token_hex(16))
    except Exception:
        # The change itself stands. The API cannot serve requests without Redis either
        # (its throttle lives there); once Redis answers again, a remembered key is
        # still used at most a minute after its last use was recorded.
        logger.exception("could not announce an API key change in Redis")


def api_keys_changed() -> None:
    """Make every process forget the keys it remembers, on its next request.

    Announced at once, so the change is seen even inside the current transaction,
    and again after the commit: a process that reloaded a row in between read the
    old, uncommitted-over one, and must drop it again.
    """
    _announce_change()
    transaction.on_commit(_announce_change)


@receiver(post_save, sender=ApiKey, dispatch_uid="api_key_saved")
def _api_key_saved(sender, instance, created, raw=False, **kwargs):
    if not created:  # a new key is remembered nowhere yet
        api_keys_changed()


@receiver(post_delete, sender=ApiKey, dispatch_uid="api_key_deleted")
def _api_key_deleted(sender, instance, **kwargs):
    api_keys_changed()


def idempotency_key_errors(key: str) -> dict:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        return {
            "Idempotency-Key": [
                _("Idempotency-Key must be 1 to %(n)d printable ASCII characters.") % {"n": IDEMPOTENCY_KEY_MAX_LENGTH}
            ]
        }
    return {}


def _replay(row: ApiIdempotencyKey, request_hash: str):
    if not hmac.compare_digest(row.request_hash, request_hash):
        raise IdempotencyKeyReused(errors={"Idempotency-Key": [IdempotencyKeyReused.default_message]})
    return row.document


@transaction.atomic
def api_request_once(*, api_key: ApiKey, key: str | None, request_hash: str, create: Callable):
    """Run `create()` (which returns a Document) once per (api key, Idempotency-Key).

    Returns (document, replayed). A retry with the same key and the same body returns
    the document the first request created and creates nothing; the same key with a
    different body raises IdempotencyKeyReused. Without a key, `create()` just runs.

    The key is reserved before `create()` runs, in the same transaction: a concurrent
    retry's insert waits on the first one's row and, once that commits, sees the key
    taken and replays; if the first fails and rolls back, the retry proceeds. A failed
    request therefore leaves no key behind, and a corrected retry may reuse it.
    """
    if not key:
        return create(), False
    errors = idempotency_key_errors(key)
    if errors:
        raise ValidationFailed(_("The Idempotency-Key header is not valid."), errors=errors)
    existing = ApiIdempotencyKey.objects.select_related("document").filter(api_key=api_key, key=key).first()
    if existing is not None:
        return _replay(existing, request_hash), True
    try:
        with transaction.atomic():
            row = ApiIdempotencyKey.objects.create(api_key=api_key, key=key, request_hash=request_hash)
    except IntegrityError:
        existing = ApiIdempotencyKey.objects.select_related("document").get(api_key=api_key, key=key)
        return _replay(existing, request_hash), True
    document = create()
    row.document = document
    row.save(update_fields=["document"])
    return document, False
