"""Admin for institutions and their staff memberships (ministry operators)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from institutions import admin_apikeys, admin_keys  # noqa: F401  (register their models)
from institutions.models import Institution, Membership
from registry.admin_utils import LargeTableAdminMixin


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    # A raw id, not a select: a select would load every user of the registry.
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Institution)
class InstitutionAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ["short_name", "inn", "ogrn", "kind", "ownership", "region_code"]
    list_filter = ["kind", "ownership", "region_code"]
    # INN by prefix (an exact INN is a prefix of itself), names by substring; each
    # has its index on PostgreSQL (registry/migrations/0002_search_indexes).
    search_fields = ["inn__startswith", "short_name__icontains", "full_name__icontains"]
    search_help_text = _("INN or its first digits, or part of the name.")
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["full_name", "short_name", "kind", "ownership"]}),
        (_("Identifiers"), {"fields": ["inn", "ogrn", "kpp", "region_code"]}),
        (_("Record"), {"fields": ["created_at"]}),
    ]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ["user", "institution", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "institution"]
    search_fields = ["user__username__istartswith", "institution__inn__startswith"]
    search_help_text = _("Login (its beginning) or the institution's INN.")
    autocomplete_fields = ["institution"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]
