import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from documents.kinds import DocumentKind
from documents.validators import snils_mask


def new_verification_code() -> str:
    """A random, unguessable code for the QR link; never derived from the number."""
    return new_verification_codes(1)[0]


def new_verification_codes(n: int) -> list[str]:
    """`n` codes (128 random bits each, base64url), from one draw of random bytes (bulk issuance)."""
    raw = secrets.token_bytes(16 * n)
    return [base64.urlsafe_b64encode(raw[i : i + 16]).rstrip(b"=").decode("ascii") for i in range(0, 16 * n, 16)]


class Graduate(models.Model):
    """A document holder as known to one institution.

    SNILS is stored encrypted; `snils_hash` (a keyed HMAC) finds a person by exact
    SNILS without decrypting anything.
    """

    # No single-column index: graduate_unique_snils_per_institution and the name
    # index lead with it and serve every lookup and the foreign-key checks.
    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.PROTECT,
        related_name="graduates",
        verbose_name=_("institution"),
        db_index=False,
    )
    last_name = models.CharField(_("last name"), max_length=100)
    first_name = models.CharField(_("first name"), max_length=100)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"))
    snils_encrypted = models.BinaryField(_("SNILS (encrypted)"))
    snils_hash = models.CharField(_("SNILS hash"), max_length=64)
    citizenship = models.CharField(_("citizenship"), max_length=3, default="RUS")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("graduate")
        verbose_name_plural = _("graduates")
        constraints = [
            models.UniqueConstraint(fields=["institution", "snils_hash"], name="graduate_unique_snils_per_institution"),
        ]
        indexes = [
            models.Index(fields=["snils_hash"]),
            models.Index(fields=["institution", "last_name", "first_name"]),
            models.Index(fields=["last_name", "birth_date"]),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)

    @property
    def snils(self) -> str:
        from documents.pii import snils_decrypt

        return snils_decrypt(self.snils_encrypted)

    @property
    def snils_masked(self) -> str:
        return snils_mask(self.snils)


class DocumentStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    ANNULLED = "annulled", _("Annulled")


class CopyMark(models.TextChoices):
    """ФРДО: whether the document is the original or a duplicate."""

    ORIGINAL = "original", _("Original")
    DUPLICATE = "duplicate", _("Duplicate")


class LossMark(models.TextChoices):
    """ФРДО marks on an original later replaced or annulled."""

    NONE = "", _("None")
    LOST = "lost", _("Lost")
    EXCHANGED = "exchanged", _("Exchanged")
    DESTROYED = "destroyed", _("Destroyed")


class ReplacementReason(models.TextChoices):
    NONE = "", _("None")
    DUPLICATE = "duplicate", _("Duplicate")
    CORRECTION = "correction", _("Correction")


class Document(models.Model):
    # No single-column index on institution or experiment: document_inst_id and
    # document_experiment_id lead with them; each index is one more write for every
    # document issued (a bulk import writes a hundred thousand).
    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.PROTECT,
        related_name="documents",
        verbose_name=_("institution"),
        db_index=False,
    )
    graduate = models.ForeignKey(
        Graduate, on_delete=models.PROTECT, related_name="documents", verbose_name=_("graduate")
    )
    kind = models.CharField(_("kind"), max_length=40, choices=DocumentKind.choices)
    series = models.CharField(_("series"), max_length=30, blank=True, default="")
    number = models.CharField(_("number"), max_length=30)
    registration_number = models.CharField(_("registration number"), max_length=30)
    issued_on = models.DateField(_("issue date"))
    programme_code = models.CharField(_("programme code (OKSO)"), max_length=8, blank=True)
    programme_name = models.CharField(_("programme"), max_length=500, blank=True)
    qualification = models.CharField(_("qualification"), max_length=300, blank=True)
    hours = models.PositiveIntegerField(_("hours"), null=True, blank=True)
    honours = models.BooleanField(_("with honours"), default=False)
    grades = models.JSONField(_("grades"), default=list, blank=True)

    status = models.CharField(_("status"), max_length=10, choices=DocumentStatus.choices, default=DocumentStatus.DRAFT)
    copy_mark = models.CharField(
        _("original or duplicate"), max_length=10, choices=CopyMark.choices, default=CopyMark.ORIGINAL
    )
    loss_mark = models.CharField(
        _("loss mark"), max_length=10, choices=LossMark.choices, blank=True, default=LossMark.NONE
    )
    # Indexed by document_replaces, partial: only duplicates and corrections replace
    # anything, so the index holds those few rows instead of a NULL for every
    # document (one write less per document issued; the purge's look-ups of what
    # points at its documents stay in a few cached pages).
    replaces = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replacements",
        verbose_name=_("replaces"),
        db_index=False,
    )
    replacement_reason = models.CharField(
        _("replacement reason"), max_length=10, choices=ReplacementReason.choices, blank=True, default=""
    )
    experiment = models.ForeignKey(
        "experiment.Experiment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="documents",
        verbose_name=_("experiment"),
        help_text=_("Empty for a non-experimental document."),
        db_index=False,
    )

    verification_code = models.CharField(
        _("verification code"), max_length=32, unique=True, default=new_verification_code
    )
    signed_payload = models.JSONField(_("signed payload"), null=True, blank=True)
    signature = models.CharField(_("signature"), max_length=128, blank=True)
    signing_key = models.ForeignKey(
        "institutions.SigningKey",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="documents",
        verbose_name=_("signing key"),
    )
    signed_at = models.DateTimeField(_("signed"), null=True, blank=True)
    status_list_index = models.PositiveIntegerField(_("status list index"), null=True, blank=True, unique=True)
    annulled_at = models.DateTimeField(_("annulled"), null=True, blank=True)
    annul_reason = models.CharField(_("annulment reason"), max_length=500, blank=True)

    import_job = models.ForeignKey(
        "documents.ImportJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="documents",
        verbose_name=_("import job"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        constraints = [
            models.UniqueConstraint(fields=["kind", "series", "number"], name="document_unique_kind_series_number"),
            models.CheckConstraint(
                condition=~Q(registration_number=F("number")), name="document_registration_number_differs"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(signature__gt="", signed_at__isnull=False),
                name="document_issued_is_signed",
            ),
        ]
        indexes = [
            # The cabinet's and the API's lists: one institution, newest first.
            models.Index(fields=["institution", "-id"], name="document_inst_id"),
            models.Index(fields=["institution", "status", "-id"], name="document_inst_status_id"),
            models.Index(fields=["institution", "kind", "-id"], name="document_inst_kind_id"),
            models.Index(fields=["experiment", "id"], name="document_experiment_id"),
            models.Index(fields=["issued_on"], name="document_issued_on"),
            models.Index(fields=["status", "-id"], name="document_status_id"),
            models.Index(fields=["kind", "-id"], name="document_kind_id"),
            # Pattern indexes: equality and the admin's prefix searches (documents 0006).
            models.Index(fields=["number"], name="document_number", opclasses=["text_pattern_ops"]),
            models.Index(
                fields=["registration_number"], name="document_registration_number", opclasses=["text_pattern_ops"]
            ),
            models.Index(fields=["created_at"], name="document_created_at"),
            models.Index(fields=["replaces"], name="document_replaces", condition=Q(replaces__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.series} {self.number}".replace("  ", " ")

    def get_kind_display(self) -> str:
        # Django's generated method hashes every choice's lazy label (one translation
        # look-up per kind) on each call; lists call it once a row.
        try:
            return str(DocumentKind(self.kind).label)
        except ValueError:
            return self.kind

    @property
    def is_experimental(self) -> bool:
        return self.experiment_id is not None

    @property
    def legal_force(self) -> bool:
        return not self.is_experimental


class DeliveryAction(models.TextChoices):
    PUBLISH = "publish", _("Publish")
    WITHDRAW = "withdraw", _("Withdraw")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Delivered")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Not needed")


class Delivery(models.Model):
    """An outbox row: publish one document at Gosuslugi, or withdraw it.

    Written in the same transaction as the change it announces. Workers claim a row
    with a conditional UPDATE (see documents.delivery), so no row is delivered twice
    at once; `idempotency_key` makes a repeated publish harmless at the portal.
    A withdraw keeps only `portal_id` so it can outlive the purged document. The
    purge queues its withdrawals in bulk: one row per few hundred placements of an
    institution, listed in `portal_ids` (no document, no personal data).
    """

    # No single-column FK indexes: delivery_document_id and delivery_inst_state lead
    # with these columns and serve every lookup (and the FK checks); each index is one
    # more write per outbox row, and the purge rewrites a million of them.
    document = models.ForeignKey(
        Document,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("document"),
        db_index=False,
    )
    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("institution"),
        db_index=False,
    )
    action = models.CharField(_("action"), max_length=10, choices=DeliveryAction.choices)
    state = models.CharField(_("state"), max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    portal_id = models.CharField(_("portal id"), max_length=100, blank=True)
    # A bulk withdraw (the purge's): the placements it still has to remove; a worker
    # shortens the list as it goes, so a retry repeats nothing already withdrawn.
    # Empty (NULL) on every other row.
    portal_ids = models.JSONField(_("portal ids to withdraw"), null=True, blank=True, default=None)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            # The sweep: only rows still to do, by due time. Partial, so it stays
            # small however many deliveries are done.
            models.Index(
                fields=["next_attempt_at"], name="delivery_due", condition=Q(state__in=["pending", "in_progress"])
            ),
            models.Index(fields=["state", "-id"], name="delivery_state_id"),
            models.Index(fields=["institution", "state"], name="delivery_inst_state"),
            models.Index(fields=["document", "-id"], name="delivery_document_id"),
        ]

    def __str__(self) -> str:
        if self.portal_ids:
            return f"{self.get_action_display()} {self.placements_label()}: {self.get_state_display()}"
        return f"{self.get_action_display()} #{self.document_id or self.portal_id}: {self.get_state_display()}"

    def placements_label(self) -> str:
        """A bulk withdraw's placements still to remove, as a person reads it ("3 placements")."""
        count = len(self.portal_ids or [])
        return ngettext("%(count)s placement", "%(count)s placements", count) % {"count": count}


# What an event's action means, for the history a person reads; an action missing
# here is shown by its code.
EVENT_ACTION_LABELS = {
    "graduate.created": _("Graduate added"),
    "graduate.updated": _("Graduate changed"),
    "document.drafted": _("Draft created"),
    "document.updated": _("Draft changed"),
    "document.draft_deleted": _("Draft deleted"),
    "document.issued": _("Signed and issued"),
    "document.annulled": _("Annulled"),
    "document.replaced_by_duplicate": _("Replaced by a duplicate"),
    "document.replaced_by_correction": _("Replaced by a corrected document"),
    "documents.imported": _("Imported from a file, signed and issued"),
    "documents.drafted_by_import": _("Imported from a file as a draft"),
    "documents.issued_from_import": _("Signed and issued with the drafts of an upload"),
    "documents.exported_with_snils": _("Exported with SNILS"),
}


class Event(models.Model):
    """Append-only history: who did what to which record, when.

    Events carry no personal data (ids, codes and counts only), so they outlive the
    purge. Each holds the hash of the one before it in its chain (one chain per
    institution, so bulk issuance at different institutions never waits on one head),
    which makes an edit, a removal or a reordering detectable.
    """

    chain = models.CharField(_("chain"), max_length=40)
    seq = models.PositiveBigIntegerField(_("sequence"))
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("actor"), max_length=200)
    action = models.CharField(_("action"), max_length=40)
    object_type = models.CharField(_("object type"), max_length=40)
    object_id = models.BigIntegerField(_("object id"), null=True, blank=True)
    institution_id_ref = models.BigIntegerField(_("institution id"), null=True, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="event_unique_chain_seq"),
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="event_object"),
            models.Index(fields=["institution_id_ref", "-id"], name="event_institution"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"

    @property
    def action_label(self) -> str:
        return str(EVENT_ACTION_LABELS.get(self.action, self.action))


class EventChainHead(models.Model):
    """The last event of each chain; locked (SELECT … FOR UPDATE) to append."""

    chain = models.CharField(max_length=40, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("event chain head")
        verbose_name_plural = _("event chain heads")

    def __str__(self) -> str:
        return f"{self.chain}@{self.seq}"


class ImportJobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One uploaded file imported as a background job, with live progress."""

    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.CASCADE,
        related_name="import_jobs",
        verbose_name=_("institution"),
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    dry_run = models.BooleanField(_("dry run"), default=False)
    state = models.CharField(_("state"), max_length=10, choices=ImportJobState.choices, default=ImportJobState.QUEUED)
    total_rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    processed_rows = models.PositiveIntegerField(_("processed"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    unchanged = models.PositiveIntegerField(_("already present"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        indexes = [models.Index(fields=["institution", "-id"], name="importjob_inst_id")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_state_display()})"


class ImportRejection(models.Model):
    """A rejected row of an import: its line and the reasons, rendered per language.

    `reasons` is a list of {"field", "code", "params"}; the message is produced from
    the code at display time, so the error report speaks the reader's language.
    """

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="rejections", verbose_name=_("import job")
    )
    line = models.PositiveIntegerField(_("line"))
    reasons = models.JSONField(_("reasons"), default=list)

    class Meta:
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")
        ordering = ["job", "line"]
        indexes = [models.Index(fields=["job", "line"], name="importrejection_job_line")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.line}"
