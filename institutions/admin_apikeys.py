"""Admin for partner API keys: create (the key is shown once), revoke, watch use.

Only the hash is stored, so the admin can never show a key again; an operator who
lost one revokes it and creates another.
"""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from institutions.apikeys import api_key_create, api_key_errors, api_key_revoke
from institutions.models import ApiKey
from registry.errors import DomainError


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "scope", "institution"]

    def clean(self):
        cleaned = super().clean()
        if "scope" in cleaned:
            for field, errors in api_key_errors(scope=cleaned["scope"], institution=cleaned.get("institution")).items():
                for error in errors:
                    self.add_error(field, error)
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scope", "institution", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "institution__inn", "institution__short_name"]
    list_select_related = ["institution"]
    raw_id_fields = ["institution"]
    actions = ["revoke"]
    readonly_fields = [
        "name",
        "prefix",
        "scope",
        "institution",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["name", "scope", "institution"] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # A key is revoked, never deleted: its prefix stays in the history of what it did.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        row, plaintext = api_key_create(
            name=obj.name, scope=obj.scope, institution=obj.institution, created_by=request.user
        )
        # The admin goes on with `obj` (log entry, redirect), so it becomes the saved row.
        for field in row._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state = row._state
        messages.warning(
            request,
            _("Copy the key now; it is shown only this once and cannot be recovered: %(key)s") % {"key": plaintext},
        )

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            try:
                api_key_revoke(api_key=api_key, revoked_by=request.user)
            except DomainError as exc:
                self.message_user(request, str(exc.message), messages.ERROR)
                continue
            count += 1
        self.message_user(
            request, ngettext("Revoked %(n)d key.", "Revoked %(n)d keys.", count) % {"n": count}, messages.SUCCESS
        )
