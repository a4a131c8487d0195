"""Celery tasks of the experiment: thin wrappers around the purge and the dashboard's figures."""

from celery import shared_task

from experiment import purge
from registry.actors import Actor


@shared_task(ignore_result=True)
def purge_due_experiments() -> None:
    """Purge every experiment whose purge date has come (daily beat).

    Idempotent: an experiment already purged is a no-op; one interrupted is finished.
    """
    purge.experiments_purge_due(actor=Actor.system("purge"))


@shared_task(ignore_result=True)
def purge_experiment(year: int) -> None:
    """Purge the experiment of `year` if its purge date has come; idempotent and resumable."""
    purge.experiment_purge(year=year, actor=Actor.system("purge"))


@shared_task(ignore_result=True)
def dashboard_refresh(experiment_id: int) -> None:
    """Recompute the ministry dashboard's cached figures of one experiment (scheduled by a page view)."""
    from experiment.models import Experiment
    from experiment.selectors import dashboard_compute

    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is not None:
        dashboard_compute(experiment=experiment)
