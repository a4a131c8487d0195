"""Celery tasks: thin wrappers that take ids and call the services."""

from celery import shared_task

from documents import delivery


@shared_task(ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Deliver one outbox row; idempotent (a done row, or one claimed elsewhere, is left alone)."""
    delivery.delivery_process(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliver_batch(delivery_ids: list[int]) -> None:
    """Deliver a batch of outbox rows; idempotent like `deliver`, row by row."""
    delivery.deliveries_process(delivery_ids=delivery_ids)


@shared_task(ignore_result=True)
def dispatch_deliveries(delivery_ids: list[int]) -> None:
    """Send the delivery tasks for many new outbox rows (a bulk import's batch), in chunks."""
    delivery.deliveries_dispatch(delivery_ids=delivery_ids)


@shared_task(ignore_result=True)
def sweep_deliveries(after_id: int = 0) -> None:
    """Re-send every due delivery in bounded runs, continuing in a follow-up task; idempotent."""
    _, cursor = delivery.deliveries_sweep(after_id=after_id)
    if cursor is not None:
        sweep_deliveries.delay(after_id=cursor)


@shared_task(ignore_result=True, acks_late=True)
def import_run(job_id: int) -> None:
    """Run or resume one import job; idempotent (a finished job is left alone, an
    interrupted one continues after its last committed batch)."""
    from documents.imports import import_job_run

    import_job_run(job_id=job_id)
