from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        from registry.sqlite import install_unicode_like

        connection_created.connect(install_unicode_like, dispatch_uid="registry.sqlite.unicode_like")
