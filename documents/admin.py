"""Admin for graduates, documents, their history and imports (ministry operators).

Operators look here; they do not edit. A document's content is signed and its
changes go through documents.services (history, outbox, signature), so every
document field is read-only here and admin actions, if any, call a service.
Graduates carry SNILS: it is shown masked and found only by its keyed hash.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from documents import admin_delivery  # noqa: F401  (registers Delivery)
from documents.models import Document, Event, Graduate, ImportJob, ImportRejection
from documents.pii import snils_lookup_hash
from documents.validators import snils_is_valid, snils_normalize
from registry.admin_utils import LargeTableAdminMixin, ReadOnlyAdminMixin

HISTORY_LIMIT = 50


@admin.register(Graduate)
class GraduateAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["last_name", "first_name", "middle_name", "birth_date", "snils_masked_display", "institution"]
    list_select_related = ["institution"]
    search_fields = ["last_name__icontains"]
    search_help_text = _("Part of the last name, or a full SNILS.")
    fields = [
        "institution",
        "last_name",
        "first_name",
        "middle_name",
        "birth_date",
        "snils_masked_display",
        "citizenship",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("SNILS"))
    def snils_masked_display(self, obj: Graduate) -> str:
        return obj.snils_masked

    def get_search_results(self, request, queryset, search_term):
        # A whole SNILS is matched through its keyed hash (indexed); it is never
        # compared in clear and never stored in the search's query string logs.
        if snils_is_valid(search_term.strip()):
            return queryset.filter(snils_hash=snils_lookup_hash(snils_normalize(search_term.strip()))), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Document)
class DocumentAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "number",
        "registration_number",
        "status",
        "copy_mark",
        "issued_on",
        "institution",
        "experiment",
    ]
    list_display_links = ["__str__"]
    list_select_related = ["institution", "experiment"]
    # Every filter has an index (documents/models.py, registry/migrations/0002);
    # none lists a big related table (the experiment table has a row per year).
    list_filter = ["status", "kind", "experiment", "copy_mark", ("issued_on", admin.DateFieldListFilter)]
    search_fields = ["number__startswith", "registration_number__startswith"]
    search_help_text = _("Document number or registration number, or their first characters.")
    raw_id_fields = ["graduate", "replaces", "signing_key", "import_job", "created_by"]
    autocomplete_fields = ["institution"]
    signature_fields = [
        "verification_code",
        "signed_payload",
        "signature",
        "signing_key",
        "signed_at",
        "status_list_index",
    ]
    fieldsets = [
        (None, {"fields": ["institution", "graduate", "kind", "series", "number", "registration_number", "issued_on"]}),
        (
            _("Programme"),
            {"fields": ["programme_code", "programme_name", "qualification", "hours", "honours", "grades"]},
        ),
        (
            _("Status"),
            {
                "fields": [
                    "status",
                    "copy_mark",
                    "loss_mark",
                    "replaces",
                    "replacement_reason",
                    "experiment",
                    "annulled_at",
                    "annul_reason",
                ]
            },
        ),
        (_("Signature"), {"fields": signature_fields}),
        (_("Record"), {"fields": ["import_job", "created_by", "created_at", "updated_at"]}),
        (_("History"), {"fields": ["history"]}),
    ]

    # The columns the list shows (its rows are built from these alone): a document row
    # also holds the signed payload and the grades, parsed JSON the list never shows.
    list_columns = [
        "id",
        "kind",
        "series",
        "number",
        "registration_number",
        "status",
        "copy_mark",
        "issued_on",
        "institution__id",
        "institution__short_name",
        "institution__inn",
        "experiment__id",
        "experiment__year",
        "experiment__title",
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Document._meta.fields if f.name != "id"] + ["history"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The change permission lets operators run admin actions on the list; a
        # single document is only ever shown, never saved from here.
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description=_("History"))
    def history(self, obj: Document):
        if obj.pk is None:
            return "—"
        events = list(Event.objects.filter(object_type="document", object_id=obj.pk).order_by("-id")[:HISTORY_LIMIT])
        if not events:
            return _("No events recorded.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.actor_label, e.action, e.hash[:16]) for e in events),
        )
        url = (
            reverse("admin:documents_event_changelist")
            + "?"
            + urlencode({"object_type": "document", "object_id": obj.pk})
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">{}</a></p>',
            _("Time"),
            _("Actor"),
            _("Action"),
            _("Hash"),
            rows,
            url,
            _("All events of this document"),
        )


@admin.register(Event)
class EventAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The append-only history. Filter it through the URL, e.g. ?object_type=document&object_id=5."""

    list_display = ["created_at", "chain", "seq", "actor_label", "action", "object_type", "object_id"]
    fields = [
        "created_at",
        "chain",
        "seq",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "institution_id_ref",
        "data",
        "prev_hash",
        "hash",
    ]
    readonly_fields = fields
    raw_id_fields = ["actor"]


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "original_name",
        "institution",
        "state",
        "dry_run",
        "total_rows",
        "imported",
        "rejected",
        "created_at",
    ]
    list_select_related = ["institution"]
    list_filter = ["state", "dry_run"]
    search_fields = ["institution__inn__startswith"]
    search_help_text = _("The institution's INN or its first digits.")
    fields = [
        "institution",
        "uploaded_by",
        "original_name",
        "sha256",
        "dry_run",
        "state",
        "total_rows",
        "processed_rows",
        "imported",
        "rejected",
        "unchanged",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "rejections_link",
    ]
    readonly_fields = fields

    @admin.display(description=_("Rejected rows"))
    def rejections_link(self, obj: ImportJob):
        url = reverse("admin:documents_importrejection_changelist") + "?" + urlencode({"job__id__exact": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("Show rejected rows"))


@admin.register(ImportRejection)
class ImportRejectionAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["job", "line", "reasons"]
    list_select_related = ["job"]
    fields = ["job", "line", "reasons"]
    readonly_fields = fields
