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
