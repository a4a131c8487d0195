"""`purge_experiment YEAR [--dry-run] [--as-of YYYY-MM-DD]`: the purge the scheduler runs."""

import argparse
import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from experiment.purge import PurgeCounts, experiment_purge, withdrawals_send
from registry.actors import Actor
from registry.errors import DomainError


def _date(value: str) -> dt.date:
    # ArgumentTypeError: argparse reports it as a usage error (exit 2) rather than a traceback.
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {value!r}") from None


def counts_lines(counts: PurgeCounts) -> list[str]:
    """The counts as printed, the same for a dry run and a real run."""
    lines = [f"documents: {counts.documents}"]
    for name, values in (
        ("by institution kind", counts.by_institution_kind),
        ("by document kind", counts.by_document_kind),
    ):
        for kind, n in sorted(values.items()):
            lines.append(f"  {name}: {kind}: {n}")
    lines += [
        f"graduates: {counts.graduates}",
        f"deliveries: {counts.deliveries}",
        f"withdrawals queued: {counts.withdrawals}",
    ]
    return lines


class Command(BaseCommand):
    help = "Withdraw and delete every document of an ended experiment, with its graduates; print the counts."

    def add_arguments(self, parser):
        parser.add_argument("year", type=int)
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted; delete nothing.")
        parser.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD", help="Take this date as today.")

    def handle(self, *args, year, dry_run, as_of, **options):
        try:
            # The counts are printed before the withdrawals go out: without a broker the
            # sweep sends them in this process, which for a large experiment takes a while.
            outcome = experiment_purge(
                year=year, actor=Actor.system("purge"), as_of=as_of, dry_run=dry_run, send_withdrawals=False
            )
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        if outcome.dry_run:
            self.stdout.write(f"Dry run: a purge of the {year} experiment would delete (nothing is deleted):")
        elif outcome.nothing_to_do:
            done = outcome.report
            when = f" (purged {done.finished_at:%Y-%m-%d %H:%M}, report #{done.pk})" if done else ""
            self.stdout.write(f"Nothing to purge: the {year} experiment has no documents left{when}.")
        else:
            resumed = " (resumed an interrupted purge)" if outcome.resumed else ""
            self.stdout.write(f"Purged the {year} experiment{resumed}, report #{outcome.report.pk}:")
        for line in counts_lines(outcome.counts):
            self.stdout.write(line)
        if outcome.counts.withdrawals and not outcome.dry_run:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                self.stderr.write(f"Sending {outcome.counts.withdrawals} withdrawals to Gosuslugi in this process…")
            withdrawals_send()
