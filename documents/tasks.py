"""Celery tasks: thin wrappers that take ids and call the services."""

from celery import shared_task

from documents import delivery


@shared_task(ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Deliver one outbox row; idempotent (a done row, or one claimed elsewhere, is left alone)."""
    process = getattr(delivery, "delivery_process", None)
    if process is not None:
        process(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def sweep_deliveries() -> None:
    """Re-send every due delivery; idempotent."""
    sweep = getattr(delivery, "deliveries_sweep", None)
    if sweep is not None:
        sweep()


@shared_task(ignore_result=True, acks_late=True)
def import_run(job_id: int) -> None:
    """Run or resume one import job; idempotent (a finished job is left alone, an
    interrupted one continues after its last committed batch)."""
    from documents.imports import import_job_run

    import_job_run(job_id=job_id)
