"""Admin for experiments, stages, participation, purge reports, and the ministry dashboard."""

import datetime as dt

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from documents.kinds import DocumentKind
from experiment.admin_actions import ParticipationFilter, enrol_in_experiment
from experiment.charts import dashboard_charts, n
from experiment.forms import InnFileForm
from experiment.models import Experiment, Participation, PurgeReport, Stage
from experiment.selectors import dashboard_data, experiment_current
from experiment.services import EnrolmentOutcome, participation_enrol, participation_enrol_inns
from institutions.models import Institution, InstitutionKind
from registry.errors import DomainError


class StageInline(admin.TabularInline):
    """Stages edited with their experiment.

    Each stage form's instance gets the experiment as edited on the page (Django's
    inline FK field), so Stage.clean checks windows against the new dates, also
    when the experiment is being added.
    """

    model = Stage
    extra = 0
    min_num = 1
    fields = ("number", "title", "starts_on", "ends_on", "allows_forming", "allows_transfer")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("year", "title", "starts_on", "ends_on", "purge_on", "participants", "dashboard_link")
    search_fields = ("title", "year")
    inlines = [StageInline]
    fieldsets = (
        (None, {"fields": ("year", "title")}),
        (_("Dates"), {"fields": ("starts_on", "ends_on", "purge_on")}),
        (
            _("Participation targets by institution kind"),
            {"fields": ("target_school", "target_college", "target_university", "target_additional")},
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(participant_count=Count("participations"))

    @admin.display(description=_("participants"), ordering="participant_count")
    def participants(self, obj):
        return obj.participant_count

    @admin.display(description=_("dashboard"))
    def dashboard_link(self, obj):
        url = reverse(f"{self.admin_site.name}:experiment_experiment_dashboard")
        return format_html('<a href="{}?year={}">{}</a>', url, obj.year, _("Dashboard"))

    def get_urls(self):
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="experiment_experiment_dashboard",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        """The ministry dashboard of one experiment (?year=, default: the running one)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        year = request.GET.get("year", "")
        experiment = (
            Experiment.objects.filter(year=int(year)).first() if year.isdigit() else None
        ) or experiment_current()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Experiment dashboard"),
            "opts": self.model._meta,
            "experiment": experiment,
            "experiments": Experiment.objects.order_by("-year").values_list("year", flat=True),
        }
        if experiment is not None:
            today = timezone.localdate()
            data = dashboard_data(experiment=experiment)
            stage_starts = [dt.date.fromisoformat(stage["starts_on"]) for stage in data["stages"]]
            context.update(
                title=_("Experiment %(year)s dashboard") % {"year": experiment.year},
                data=data,
                charts=dashboard_charts(data, today=today, failed_link=self._deliveries_url(request)),
                today=today,
                calendar_from=min([experiment.starts_on, *stage_starts]).replace(day=1),
                computed_at=dt.datetime.fromisoformat(data["computed_at"]),
                tiles={
                    "participants": n(sum(row["participants"] for row in data["participation"])),
                    "targets": n(sum(row["target"] for row in data["participation"])),
                    "documents": n(sum(row["n"] for row in data["weeks"])),
                    "done": n(data["deliveries"]["done"]),
                    "failed": n(data["deliveries"]["failed"]),
                },
            )
        return TemplateResponse(request, "admin/experiment/dashboard.html", context)

    def _deliveries_url(self, request) -> str:
        """The deliveries list, when this operator may see it (the failed chart links there)."""
        from documents.models import Delivery

        model_admin = self.admin_site._registry.get(Delivery)
        if model_admin is None or not model_admin.has_view_permission(request):
            return ""
        return reverse(f"{self.admin_site.name}:documents_delivery_changelist")


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ("institution", "institution_kind", "experiment", "enrolled_at", "enrolled_by")
    list_filter = ("experiment", "institution__kind", "institution__ownership", "institution__region_code")
    list_select_related = ("institution", "experiment", "enrolled_by")
    search_fields = ("institution__short_name", "institution__full_name", "institution__inn")
    autocomplete_fields = ("institution",)
    fields = ("experiment", "institution", "enrolled_at", "enrolled_by")
    readonly_fields = ("enrolled_at", "enrolled_by")

    @admin.display(description=_("kind"), ordering="institution__kind")
    def institution_kind(self, obj):
        return obj.institution.get_kind_display()

    def get_readonly_fields(self, request, obj=None):
        # A participation is an (experiment, institution) pair: to change it, remove it.
        if obj is not None:
            return ("experiment", "institution", "enrolled_at", "enrolled_by")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        participation_enrol(experiment=obj.experiment, institution=obj.institution, user=request.user)
        saved = Participation.objects.get(experiment=obj.experiment, institution=obj.institution)
        obj.pk, obj.enrolled_at, obj.enrolled_by = saved.pk, saved.enrolled_at, saved.enrolled_by

    def get_urls(self):
        return [
            path(
                "enrol-csv/",
                self.admin_site.admin_view(self.enrol_csv_view),
                name="experiment_participation_enrol_csv",
            ),
            *super().get_urls(),
        ]

    def enrol_csv_view(self, request):
        """Enrol institutions from an uploaded CSV list of INNs; report every line."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        form = InnFileForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            experiment = form.cleaned_data["experiment"]
            try:
                report = participation_enrol_inns(
                    experiment=experiment, data=form.cleaned_data["file"].read(), user=request.user
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                counts = report.counts
                self.message_user(
                    request,
                    _(
                        "%(year)s: enrolled %(enrolled)d, already enrolled %(already)d, unknown INN %(unknown)d, "
                        "invalid INN %(invalid)d."
                    )
                    % {
                        "year": experiment.year,
                        "enrolled": counts[EnrolmentOutcome.ENROLLED],
                        "already": counts[EnrolmentOutcome.ALREADY_ENROLLED],
                        "unknown": counts[EnrolmentOutcome.UNKNOWN_INN],
                        "invalid": counts[EnrolmentOutcome.INVALID_INN],
                    },
                    messages.SUCCESS if counts[EnrolmentOutcome.ENROLLED] else messages.WARNING,
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Enrol institutions from a list of INNs"),
            "opts": self.model._meta,
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/experiment/enrol_csv.html", context)


@admin.register(PurgeReport)
class PurgeReportAdmin(admin.ModelAdmin):
    """Read-only: the purge writes reports, nobody edits them."""

    list_display = (
        "experiment_year",
        "started_at",
        "finished_at",
        "triggered_by",
        "documents_deleted",
        "graduates_deleted",
        "deliveries_deleted",
        "withdrawals_queued",
    )
    list_filter = ("experiment_year",)
    fields = (
        "experiment_year",
        "started_at",
        "finished_at",
        "triggered_by",
        "documents_deleted",
        "graduates_deleted",
        "deliveries_deleted",
        "withdrawals_queued",
        "institution_kinds",
        "document_kinds",
    )
    readonly_fields = fields

    @admin.display(description=_("documents by institution kind"))
    def institution_kinds(self, obj):
        return _counts_table(obj.by_institution_kind, labels=dict(InstitutionKind.choices))

    @admin.display(description=_("documents by document kind"))
    def document_kinds(self, obj):
        return _counts_table(obj.by_document_kind, labels=dict(DocumentKind.choices))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _counts_table(counts: dict, *, labels: dict):
    """The counts as a small table, largest first, kinds by their names (the code for a kind since removed)."""
    if not counts:
        return "—"
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td></tr>", ((labels.get(kind, kind), n(count)) for kind, count in ordered)
    )
    return format_html('<table class="purge-counts">{}</table>', rows)


def _institution_admin_extend() -> None:
    """Add enrolment to the institution list (owned by the institutions app).

    The institutions app is installed before this one, so its admin is registered
    by now; if it registers none, a minimal one is registered here so that the
    participation admin's autocomplete and the enrol action have a list to work on.
    """
    model_admin = admin.site._registry.get(Institution)
    if model_admin is None:

        class InstitutionAdmin(admin.ModelAdmin):
            list_display = ("short_name", "inn", "kind", "ownership", "region_code")
            list_filter = ("kind", "ownership", "region_code")
            search_fields = ("short_name", "full_name", "inn", "ogrn")

        admin.site.register(Institution, InstitutionAdmin)
        model_admin = admin.site._registry[Institution]
    actions = list(model_admin.actions or [])
    if enrol_in_experiment not in actions:
        model_admin.actions = [*actions, enrol_in_experiment]
    filters = list(model_admin.list_filter or [])
    if ParticipationFilter not in filters:
        model_admin.list_filter = [*filters, ParticipationFilter]
    if not model_admin.search_fields:
        model_admin.search_fields = ("short_name", "full_name", "inn")


_institution_admin_extend()
