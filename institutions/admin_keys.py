"""Admin for signing keys: list, rotate per institution, revoke from a compromise moment.

Keys are created by the signing service on first need, never by hand, and never
deleted (old documents verify with them). The private half is not shown in any
form: the admin sees the public key, the validity and the revocation.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from institutions.keys import public_key_multibase, signing_key_revoke, signing_key_rotate
from institutions.models import SigningKey
from registry.actors import Actor
from registry.errors import DomainError


class RevokeForm(forms.Form):
    compromised_from = forms.DateTimeField(
        label=_("Compromised from"),
        help_text=_(
            "Signatures made from this moment on stop counting. Use the earliest moment the key may have leaked."
        ),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )
    reason = forms.CharField(label=_("Reason"), max_length=500)


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("current", _("Current")), ("retired", _("Retired")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "current":
            return queryset.filter(not_after__isnull=True, revoked_at__isnull=True)
        if self.value() == "retired":
            return queryset.filter(not_after__isnull=False, revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "institution", "state", "not_before", "not_after", "revoked_at")
    list_filter = (StateFilter,)
    search_fields = ("kid", "institution__inn", "institution__short_name")
    list_select_related = ("institution",)
    ordering = ("institution__short_name", "-not_before")
    # Only what a verifier could see anyway; the encrypted private half stays out.
    fields = (
        "kid",
        "institution",
        "public_key_multibase",
        "not_before",
        "not_after",
        "revoked_at",
        "revocation_reason",
        "created_at",
    )
    readonly_fields = fields
    actions = ("rotate_institution_keys", "revoke_keys")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"))
    def state(self, obj: SigningKey) -> str:
        if obj.revoked_at:
            return str(_("Revoked"))
        if obj.not_after:
            return str(_("Retired"))
        return str(_("Current"))

    @admin.display(description=_("public key (Multikey)"))
    def public_key_multibase(self, obj: SigningKey) -> str:
        return public_key_multibase(obj)

    def _actor(self, request) -> Actor:
        return Actor.system("admin", user=request.user)

    @admin.action(description=_("Rotate the signing key of the selected keys' institutions"), permissions=["change"])
    def rotate_institution_keys(self, request, queryset):
        institutions = {key.institution_id: key.institution for key in queryset.select_related("institution")}
        for institution in institutions.values():
            signing_key_rotate(institution=institution, actor=self._actor(request))
        self.message_user(
            request,
            ngettext(
                "Rotated the key of %(n)d institution; its old key stays published.",
                "Rotated the keys of %(n)d institutions; their old keys stay published.",
                len(institutions),
            )
            % {"n": len(institutions)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Revoke the selected keys as compromised…"), permissions=["change"])
    def revoke_keys(self, request, queryset):
        if "apply" in request.POST:
            form = RevokeForm(request.POST)
            if form.is_valid():
                try:
                    for key in queryset:
                        signing_key_revoke(
                            key=key,
                            compromised_from=form.cleaned_data["compromised_from"],
                            reason=form.cleaned_data["reason"],
                            actor=self._actor(request),
                        )
                except DomainError as exc:
                    for errors in exc.errors.values():
                        for error in errors:
                            form.add_error("compromised_from", error)
                else:
                    self.message_user(
                        request,
                        ngettext("Revoked %(n)d key.", "Revoked %(n)d keys.", queryset.count())
                        % {"n": queryset.count()},
                        messages.SUCCESS,
                    )
                    return None
        else:
            form = RevokeForm(initial={"compromised_from": timezone.localtime().replace(second=0, microsecond=0)})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Revoke signing keys"),
            "keys": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/institutions/signingkey/revoke.html", context)
