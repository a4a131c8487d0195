"""Celery tasks of the experiment: thin wrappers around the purge."""

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
