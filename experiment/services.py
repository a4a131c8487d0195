"""Experiment rules: which experiment a newly formed document belongs to, and when.

The one place that decides whether an institution may form documents today.
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from experiment.models import Experiment, Stage
from registry.errors import NotAllowed


@dataclass(frozen=True)
class FormingRule:
    """What an institution may do on a given day, and why not if it may not."""

    allowed: bool
    experiment: Experiment | None
    stage: Stage | None
    reason: str = ""
    transfer_allowed: bool = False


def today() -> dt.date:
    return timezone.localdate()


def active_stages(*, experiment: Experiment, on: dt.date) -> list[Stage]:
    """Return the stages active on `on`; stages may overlap (2024: stages 1 and 2)."""
    return list(experiment.stages.filter(starts_on__lte=on, ends_on__gte=on).order_by("number"))


def forming_rule(*, institution, on: dt.date | None = None) -> FormingRule:
    """Return whether `institution` may form documents on `on` and into which experiment.

    An enrolled institution forms experimental documents only while a stage that
    allows forming is active. An institution in no running experiment forms regular
    (non-experimental) documents only when regular operation is switched on.
    """
    on = on or today()
    participation = (
        institution.participations.select_related("experiment")
        .filter(experiment__starts_on__lte=on, experiment__purge_on__gt=on)
        .order_by("-experiment__year")
        .first()
    )
    if participation is not None:
        experiment = participation.experiment
        stages = active_stages(experiment=experiment, on=on)
        transfer = any(st.allows_transfer for st in stages)
        forming = [st for st in stages if st.allows_forming]
        if not stages:
            return FormingRule(
                False,
                experiment,
                None,
                _("No stage of the %(year)s experiment is active today (%(day)s): documents cannot be formed.")
                % {"year": experiment.year, "day": on.strftime("%d.%m.%Y")},
            )
        if not forming:
            return FormingRule(
                False,
                experiment,
                stages[0],
                _("Stage %(number)s of the %(year)s experiment does not allow forming documents.")
                % {"number": stages[0].number, "year": experiment.year},
                transfer_allowed=transfer,
            )
        return FormingRule(True, experiment, forming[0], transfer_allowed=transfer)
    if settings.REGISTRY_REGULAR_OPERATION:
        return FormingRule(True, None, None, transfer_allowed=True)
    return FormingRule(
        False,
        None,
        None,
        _("The institution is not enrolled in a running experiment and regular operation is switched off."),
    )


def forming_experiment(*, institution, on: dt.date | None = None) -> Experiment | None:
    """Return the experiment a document formed now belongs to (None: regular), or raise."""
    rule = forming_rule(institution=institution, on=on)
    if not rule.allowed:
        raise NotAllowed(rule.reason, code="stage_closed")
    return rule.experiment
