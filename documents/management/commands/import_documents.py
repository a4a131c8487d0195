"""`import_documents FILE --institution INN [--dry-run]`: the upload form's import, from a shell."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from documents.imports import (
    import_job_create,
    import_job_rejections,
    import_job_run,
    job_error_text,
    rejection_reasons,
)
from documents.models import ImportJobState
from institutions.models import Institution
from registry.actors import SYSTEM, Actor
from registry.errors import DomainError


class Command(BaseCommand):
    help = "Import documents from a CSV or XLSX file for one institution, as the upload form does."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--institution", required=True, help="the institution's INN")
        parser.add_argument("--dry-run", action="store_true", help="check every row, import nothing")

    def handle(self, *args, file, institution, dry_run, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        target = Institution.objects.filter(inn=institution).first()
        if target is None:
            raise CommandError(f"no institution with INN {institution}")
        actor = Actor(label="system:import_documents", institution=target, role=SYSTEM)
        try:
            with path.open("rb") as fh:
                job = import_job_create(actor=actor, institution=target, fileobj=fh, name=path.name, dry_run=dry_run)
        except DomainError as exc:
            raise CommandError(str(exc.message)) from None
        job = import_job_run(job_id=job.pk)
        for rejection in import_job_rejections(job):
            reasons = "; ".join(f"{field}: {text}" if field else text for field, text in rejection_reasons(rejection))
            self.stdout.write(_("line %(line)d: %(reasons)s") % {"line": rejection.line, "reasons": reasons})
        if job.state == ImportJobState.FAILED:
            raise CommandError(job_error_text(job))
        if job.unchanged:
            self.stdout.write(_("already present %(n)d") % {"n": job.unchanged})
        self.stdout.write(f"imported {job.imported}, rejected {job.rejected}")
