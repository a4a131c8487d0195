"""Admin for Gosuslugi deliveries (the outbox): monitoring and "retry now".

Rows are written and changed only by the outbox (documents.delivery); the admin
reads them and offers one action, which calls the service.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from documents.delivery import deliveries_retry_now
from documents.models import Delivery, DeliveryState
from registry.actors import Actor
from registry.admin_utils import LargeTableAdminMixin


@admin.register(Delivery)
class DeliveryAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "action",
        "state",
        "document_link",
        "institution",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    )
    list_filter = ("state", "action", "created_at")
    list_select_related = ("document", "institution")
    search_fields = ("=id", "=portal_id", "=document__id")
    ordering = ("-id",)
    show_full_result_count = False
    list_per_page = 100
    actions = ["retry_now"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing is enough: every change goes through the outbox or the action.
        return False

    def get_urls(self):
        extra = [path("failed/", self.admin_site.admin_view(self.failed_view), name="documents_delivery_failed")]
        return extra + super().get_urls()

    def failed_view(self, request):
        """The list of failed deliveries: the changelist filtered on state."""
        url = reverse("admin:documents_delivery_changelist")
        return HttpResponseRedirect(f"{url}?state__exact={DeliveryState.FAILED}")

    @admin.display(description=_("document"), ordering="document")
    def document_link(self, obj):
        if obj.portal_ids:
            return obj.placements_label()
        if obj.document_id is None:
            return "—"
        try:
            url = reverse("admin:documents_document_change", args=[obj.document_id])
        except NoReverseMatch:
            return str(obj.document)
        return format_html('<a href="{}">{}</a>', url, obj.document)

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return obj.last_error[:80]

    def has_retry_permission(self, request):
        return request.user.has_perm("documents.change_delivery")

    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        count = deliveries_retry_now(
            actor=Actor.system("admin", user=request.user), delivery_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.", count)
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
