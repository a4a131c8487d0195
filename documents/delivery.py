"""The Gosuslugi outbox: delivery rows written with the change, delivered after commit.

`deliveries_enqueue` runs inside the caller's transaction; the task that delivers
is sent only on commit, and the periodic sweep re-sends whatever is due, so a lost
broker message delays a delivery but never loses it.
"""

from django.db import transaction
from django.utils import timezone

from documents.models import Delivery, DeliveryAction, DeliveryState, Document


def deliveries_enqueue(*, documents: list[Document], action: str) -> list[Delivery]:
    """Write one outbox row per document and send the delivery tasks on commit.

    A withdraw of a document that was never published is recorded as skipped: there
    is nothing at the portal to remove.
    """
    now = timezone.now()
    rows = []
    for document in documents:
        row = Delivery(document=document, institution_id=document.institution_id, action=action, next_attempt_at=now)
        if action == DeliveryAction.WITHDRAW:
            published = (
                Delivery.objects.filter(document=document, action=DeliveryAction.PUBLISH)
                .exclude(state=DeliveryState.SKIPPED)
                .order_by("-id")
                .first()
            )
            if published is None:
                row.state = DeliveryState.SKIPPED
            elif published.portal_id:
                row.portal_id = published.portal_id
        rows.append(row)
    Delivery.objects.bulk_create(rows)
    due = [row.pk for row in rows if row.state == DeliveryState.PENDING]
    if due:
        transaction.on_commit(lambda: _send(due))
    return rows


def _send(delivery_ids: list[int]) -> None:
    from documents.tasks import deliver

    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)
