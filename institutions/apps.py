from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InstitutionsConfig(AppConfig):
    name = "institutions"
    verbose_name = _("Institutions")

    def ready(self):
        # Connects the signals that tell every process a partner key changed.
        from institutions import apikeys  # noqa: F401
