"""Reads for the ministry dashboard.

Every figure is one GROUP BY over the experiment's documents (by week and kind;
their deliveries by state and by institution), a handful of aggregate queries and no per-row Python. At a million
documents the weekly GROUP BY still reads every row of the experiment (about a
second on two busy cores), so no page view waits for it: the figures are cached,
fresh for a minute; a view that finds them older is answered from the cache at
once and schedules one refresh in the background (stale-while-revalidate, one
refresh at a time however many operators press reload). Only the very first view
of an experiment, with nothing cached, computes them inline.
"""

import datetime as dt
import logging

from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import TruncWeek
from django.utils import timezone

from documents.models import Delivery, DeliveryState, Document
from experiment.models import Experiment, Participation
from institutions.models import Institution, InstitutionKind

logger = logging.getLogger(__name__)

# Figures younger than this are served as they are; older ones are served while a
# refresh runs. Kept at most DASHBOARD_KEEP: after a day without a view, recompute.
DASHBOARD_TTL = 60
DASHBOARD_KEEP = 24 * 3600
TOP_FAILED = 10


def dashboard_cache_key(experiment_id: int) -> str:
    return f"experiment:dashboard:v3:{experiment_id}"


def _refresh_lock_key(experiment_id: int) -> str:
    return f"experiment:dashboard:v3:{experiment_id}:refreshing"


def experiment_current(*, on: dt.date | None = None) -> Experiment | None:
    """Return the experiment running on `on`, else the latest one that has started, else the latest."""
    on = on or timezone.localdate()
    running = Experiment.objects.filter(starts_on__lte=on, ends_on__gte=on).order_by("-year").first()
    return (
        running
        or Experiment.objects.filter(starts_on__lte=on).order_by("-year").first()
        or Experiment.objects.order_by("-year").first()
    )


def participation_by_kind(*, experiment: Experiment) -> list[dict]:
    counts = dict(
        Participation.objects.filter(experiment=experiment)
        .order_by()
        .values("institution__kind")
        .annotate(n=Count("id"))
        .values_list("institution__kind", "n")
    )
    return [
        {
            "kind": kind.value,
            "label": str(kind.label),
            "participants": counts.get(kind.value, 0),
            "target": experiment.target_for(kind.value),
        }
        for kind in InstitutionKind
    ]


def documents_per_week(*, experiment: Experiment) -> list[dict]:
    """Documents formed (signed) in the experiment, per ISO week (Monday) and kind."""
    rows = (
        Document.objects.filter(experiment=experiment, signed_at__isnull=False)
        .annotate(week=TruncWeek("signed_at"))
        .values("week", "kind")
        .annotate(n=Count("id"))
        .order_by("week", "kind")
    )
    return [{"week": row["week"].date().isoformat(), "kind": row["kind"], "n": row["n"]} for row in rows]


def delivery_states(*, experiment: Experiment) -> dict[str, int]:
    """The experiment's documents' outbox rows (publish and withdraw) by state, every state present."""
    counts = dict(
        Delivery.objects.filter(document__experiment=experiment)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return {state.value: int(counts.get(state.value, 0)) for state in DeliveryState}


def institutions_most_failed(*, experiment: Experiment, limit: int = TOP_FAILED) -> list[dict]:
    """The institutions with the most failed deliveries of the experiment's documents."""
    rows = list(
        Delivery.objects.filter(state=DeliveryState.FAILED, document__experiment=experiment, institution__isnull=False)
        .values("institution")
        .annotate(n=Count("id"))
        .order_by("-n", "institution")[:limit]
    )
    names = dict(Institution.objects.filter(pk__in=[r["institution"] for r in rows]).values_list("pk", "short_name"))
    return [{"id": r["institution"], "name": names.get(r["institution"], ""), "failed": r["n"]} for r in rows]


def stage_calendar(*, experiment: Experiment) -> list[dict]:
    return [
        {
            "number": stage.number,
            "title": stage.title,
            "starts_on": stage.starts_on.isoformat(),
            "ends_on": stage.ends_on.isoformat(),
            "allows_forming": stage.allows_forming,
            "allows_transfer": stage.allows_transfer,
        }
        for stage in experiment.stages.order_by("number")
    ]


def dashboard_compute(*, experiment: Experiment) -> dict:
    """Compute the dashboard's figures for `experiment` now (JSON-ready) and cache them."""
    data = {
        "year": experiment.year,
        "starts_on": experiment.starts_on.isoformat(),
        "ends_on": experiment.ends_on.isoformat(),
        "purge_on": experiment.purge_on.isoformat(),
        "participation": participation_by_kind(experiment=experiment),
        "weeks": documents_per_week(experiment=experiment),
        "deliveries": delivery_states(experiment=experiment),
        "failed": institutions_most_failed(experiment=experiment),
        "stages": stage_calendar(experiment=experiment),
        "computed_at": timezone.now().isoformat(),
    }
    cache.set(dashboard_cache_key(experiment.pk), data, DASHBOARD_KEEP)
    cache.delete(_refresh_lock_key(experiment.pk))
    return data


def _refresh_schedule(experiment: Experiment) -> None:
    """Ask a worker to recompute the figures, unless a refresh is already on its way."""
    from experiment.tasks import dashboard_refresh

    # The lock expires by itself, so a lost task delays the refresh, never stops it.
    if not cache.add(_refresh_lock_key(experiment.pk), True, DASHBOARD_TTL):
        return
    try:
        dashboard_refresh.delay(experiment.pk)
    except Exception as exc:  # the broker is away: the next view after the lock expires retries
        logger.warning("Could not schedule the dashboard refresh of %s: %r", experiment.year, exc)


def dashboard_data(*, experiment: Experiment) -> dict:
    """Return the dashboard's figures for `experiment`, from the cache whenever there are any.

    Figures older than DASHBOARD_TTL are returned as they are and a background
    refresh is scheduled; with none cached they are computed inline.
    """
    data = cache.get(dashboard_cache_key(experiment.pk))
    if data is None:
        return dashboard_compute(experiment=experiment)
    age = timezone.now() - dt.datetime.fromisoformat(data["computed_at"])
    if age > dt.timedelta(seconds=DASHBOARD_TTL):
        _refresh_schedule(experiment)
    return data
