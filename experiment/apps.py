from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExperimentConfig(AppConfig):
    name = "experiment"
    verbose_name = _("Experiment")
