"""Builders shared by the experiment tests."""

from django.utils import timezone

from documents.models import Delivery, Document, DocumentStatus, Event, Graduate
from experiment.models import PurgeReport
from tests.factories import DocumentFactory, GraduateFactory


def issued_document(*, experiment, institution=None, graduate=None, portal_id: str = "", **kwargs) -> Document:
    """An issued (signed) document of `experiment` (None: regular); published when `portal_id` is given."""
    if graduate is None:
        graduate = GraduateFactory(institution=institution) if institution else GraduateFactory()
    document = DocumentFactory(
        graduate=graduate,
        institution=graduate.institution,
        status=DocumentStatus.ISSUED,
        signature="c2lnbmF0dXJl",
        signed_at=timezone.now(),
        experiment=experiment,
        **kwargs,
    )
    if portal_id:
        Delivery.objects.create(
            document=document,
            institution_id=document.institution_id,
            action="publish",
            state="done",
            portal_id=portal_id,
            delivered_at=timezone.now(),
        )
    return document


def row_counts() -> dict[str, int]:
    return {
        "documents": Document.objects.count(),
        "graduates": Graduate.objects.count(),
        "deliveries": Delivery.objects.count(),
        "reports": PurgeReport.objects.count(),
        "events": Event.objects.count(),
    }
