"""Reads scoped to an institution: every page, API view and export uses these."""

from django.db.models import QuerySet

from documents.models import Delivery, Document, Graduate, ImportJob


def documents_for(institution) -> QuerySet[Document]:
    return Document.objects.filter(institution=institution)


def graduates_for(institution) -> QuerySet[Graduate]:
    return Graduate.objects.filter(institution=institution)


def deliveries_for(institution) -> QuerySet[Delivery]:
    return Delivery.objects.filter(institution=institution)


def import_jobs_for(institution) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(institution=institution)
