from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from institutions.validators import validate_inn, validate_kpp, validate_ogrn


class InstitutionKind(models.TextChoices):
    SCHOOL = "school", _("School")
    COLLEGE = "college", _("College")
    UNIVERSITY = "university", _("University")
    ADDITIONAL = "additional", _("Additional education organisation")


class Ownership(models.TextChoices):
    FEDERAL = "federal", _("Federal")
    REGIONAL = "regional", _("Regional")
    MUNICIPAL = "municipal", _("Municipal")
    PRIVATE = "private", _("Private")


class Institution(models.Model):
    full_name = models.CharField(_("full name"), max_length=500)
    short_name = models.CharField(_("short name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=InstitutionKind.choices)
    ownership = models.CharField(_("ownership"), max_length=20, choices=Ownership.choices)
    inn = models.CharField(_("INN"), max_length=12, unique=True, validators=[validate_inn])
    ogrn = models.CharField(_("OGRN"), max_length=15, unique=True, validators=[validate_ogrn])
    kpp = models.CharField(_("KPP"), max_length=9, blank=True, validators=[validate_kpp])
    region_code = models.CharField(_("region code"), max_length=2)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["short_name"]
        indexes = [
            models.Index(fields=["kind", "region_code"]),
            models.Index(fields=["region_code"]),
        ]

    def __str__(self) -> str:
        return f"{self.short_name} ({self.inn})"


class StaffRole(models.TextChoices):
    CLERK = "clerk", _("Clerk")
    SIGNER = "signer", _("Signer")


class Membership(models.Model):
    """A user's staff role at one institution; a user may belong to several."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    institution = models.ForeignKey(
        Institution,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("institution"),
    )
    role = models.CharField(_("role"), max_length=10, choices=StaffRole.choices)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "institution"], name="membership_unique_user_institution"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.institution.short_name}: {self.get_role_display()}"


class SigningKey(models.Model):
    """An institution's Ed25519 key. The private half is stored encrypted (AES-GCM).

    A key is current while `not_after` is empty and it is not revoked. Rotation sets
    `not_after` and keeps the key published, so older documents still verify.
    Revocation marks it compromised from `revoked_at`: signatures made from then on
    no longer verify.
    """

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="signing_keys", verbose_name=_("institution")
    )
    kid = models.CharField(_("key id"), max_length=64, unique=True)
    public_key = models.BinaryField(_("public key"))
    private_key_encrypted = models.BinaryField(_("private key (encrypted)"))
    not_before = models.DateTimeField(_("valid from"), default=timezone.now)
    not_after = models.DateTimeField(_("valid until"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("compromised from"), null=True, blank=True)
    revocation_reason = models.CharField(_("revocation reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        constraints = [
            # At most one current key per institution; the rotation service relies on it.
            models.UniqueConstraint(
                fields=["institution"],
                condition=Q(not_after__isnull=True, revoked_at__isnull=True),
                name="signingkey_one_current_per_institution",
            ),
        ]

    def __str__(self) -> str:
        return self.kid


class ApiKeyScope(models.TextChoices):
    VERIFY = "verify", _("Verify documents")
    ISSUE = "issue", _("Issue documents for one institution")


class ApiKey(models.Model):
    """A partner system's key. Only a hash is stored; the key is shown once.

    API processes remember keys (registry.api.keycache): saves and deletes tell them
    through signals, but a QuerySet.update() of anything but last_used_at must call
    institutions.apikeys.api_keys_changed() itself, as api_key_revoke does.
    """

    name = models.CharField(_("name"), max_length=200)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    key_hash = models.CharField(_("key hash"), max_length=64)
    scope = models.CharField(_("scope"), max_length=10, choices=ApiKeyScope.choices)
    institution = models.ForeignKey(
        Institution,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        verbose_name=_("institution"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("partner API key")
        verbose_name_plural = _("partner API keys")
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope="issue", institution__isnull=False) | Q(scope="verify", institution__isnull=True)),
                name="apikey_issue_scope_has_institution",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ApiIdempotencyKey(models.Model):
    """A partner request's Idempotency-Key and the document that request created.

    Retrying with the same key returns that document instead of issuing another.
    Holds no personal data (the body only as a keyed hash) and goes with the document
    when it is deleted.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+", verbose_name=_("API key"))
    key = models.CharField(_("idempotency key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    document = models.ForeignKey(
        "documents.Document",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("document"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("API idempotency key")
        verbose_name_plural = _("API idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="apiidempotencykey_unique_per_api_key"),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id}:{self.key}"
