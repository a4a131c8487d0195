from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        # Connects the lockout receiver (axes' user_locked_out signal).
        from registry import bulk, login_protection  # noqa: F401  (the `__any` lookup; the lockout receiver)
        from registry.sqlite import install_unicode_like

        connection_created.connect(install_unicode_like, dispatch_uid="registry.sqlite.unicode_like")


class RegistryAdminConfig(admin_apps.AdminConfig):
    """The admin app with the two-factor site (registry/admin_site.py) as `admin.site`."""

    default = False  # RegistryConfig stays the default config of this module
    default_site = "registry.admin_site.RegistryAdminSite"
