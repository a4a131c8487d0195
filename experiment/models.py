from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Experiment(models.Model):
    """One year's experiment: its dates, participation targets and purge date.

    Documents formed in it have no legal force and are purged on or after `purge_on`.
    """

    year = models.PositiveSmallIntegerField(_("year"), unique=True)
    title = models.CharField(_("title"), max_length=300)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    purge_on = models.DateField(_("purge on"), help_text=_("The first day its documents may be purged."))
    target_school = models.PositiveIntegerField(_("target: schools"), default=0)
    target_college = models.PositiveIntegerField(_("target: colleges"), default=0)
    target_university = models.PositiveIntegerField(_("target: universities"), default=0)
    target_additional = models.PositiveIntegerField(_("target: additional education"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-year"]
        constraints = [
            models.CheckConstraint(condition=Q(starts_on__lte=F("ends_on")), name="experiment_dates_ordered"),
            models.CheckConstraint(condition=Q(purge_on__gt=F("ends_on")), name="experiment_purge_after_end"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.year)

    def clean(self) -> None:
        if self.starts_on and self.ends_on and self.starts_on > self.ends_on:
            raise ValidationError({"ends_on": _("The experiment cannot end before it starts.")})
        if self.ends_on and self.purge_on and self.purge_on <= self.ends_on:
            raise ValidationError({"purge_on": _("The purge date must come after the experiment's last day.")})

    def target_for(self, institution_kind: str) -> int:
        return getattr(self, f"target_{institution_kind}", 0)


class Stage(models.Model):
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="stages", verbose_name=_("experiment")
    )
    number = models.PositiveSmallIntegerField(_("number"))
    title = models.CharField(_("title"), max_length=300)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    allows_forming = models.BooleanField(_("allows forming documents"), default=True)
    allows_transfer = models.BooleanField(_("allows transfer to Gosuslugi"), default=True)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["experiment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="stage_unique_number"),
            models.CheckConstraint(condition=Q(starts_on__lte=F("ends_on")), name="stage_dates_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.year} · {self.number}. {self.title}"

    def clean(self) -> None:
        if self.starts_on and self.ends_on and self.starts_on > self.ends_on:
            raise ValidationError({"ends_on": _("The stage cannot end before it starts.")})
        # The experiment may be unsaved (the admin adds it with its stages): use the
        # object given, not only a saved id.
        try:
            exp = self.experiment
        except Experiment.DoesNotExist:
            exp = None
        outside = exp and exp.starts_on and exp.ends_on and self.starts_on and self.ends_on
        if outside and (self.starts_on < exp.starts_on or self.ends_on > exp.ends_on):
            raise ValidationError(
                _("The stage's window must lie within the experiment's dates (%(start)s – %(end)s).")
                % {"start": exp.starts_on, "end": exp.ends_on}
            )

    def is_active_on(self, day) -> bool:
        return self.starts_on <= day <= self.ends_on


class Participation(models.Model):
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="participations", verbose_name=_("experiment")
    )
    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.CASCADE,
        related_name="participations",
        verbose_name=_("institution"),
    )
    enrolled_at = models.DateTimeField(_("enrolled"), default=timezone.now)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("enrolled by"),
    )

    class Meta:
        verbose_name = _("participation")
        verbose_name_plural = _("participations")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "institution"], name="participation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.institution} · {self.experiment.year}"


class PurgeReport(models.Model):
    """The anonymous record a purge leaves: counts only, no personal data.

    It is also the purge's cursor: a run killed half-way leaves `finished_at` empty
    and the next run continues from the counts so far.
    """

    experiment_year = models.PositiveSmallIntegerField(_("experiment year"))
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    triggered_by = models.CharField(_("run by"), max_length=200)
    documents_deleted = models.PositiveBigIntegerField(_("documents deleted"), default=0)
    graduates_deleted = models.PositiveBigIntegerField(_("graduates deleted"), default=0)
    deliveries_deleted = models.PositiveBigIntegerField(_("deliveries deleted"), default=0)
    withdrawals_queued = models.PositiveBigIntegerField(_("withdrawals queued"), default=0)
    by_institution_kind = models.JSONField(_("documents by institution kind"), default=dict)
    by_document_kind = models.JSONField(_("documents by document kind"), default=dict)

    class Meta:
        verbose_name = _("purge report")
        verbose_name_plural = _("purge reports")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.experiment_year}: {self.started_at:%Y-%m-%d %H:%M}"
