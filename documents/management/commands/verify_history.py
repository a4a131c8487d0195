"""Check every event chain and report the first altered, removed or reordered event."""

from django.core.management.base import BaseCommand, CommandError

from documents.history import history_verify


class Command(BaseCommand):
    help = "Verify the hash chains of the event history; exit non-zero on the first fault of any chain."

    def add_arguments(self, parser):
        parser.add_argument("--chain", action="append", help="check only this chain (repeatable)")

    def handle(self, *args, chain=None, **options):
        reports = history_verify(chains=chain)
        broken = 0
        for report in reports:
            if report.fault is None:
                self.stdout.write(f"ok {report.chain}: {report.events} events")
                continue
            broken += 1
            fault = report.fault
            where = f"seq {fault.seq}" + (f" (event #{fault.event_id})" if fault.event_id else "")
            self.stdout.write(f"FAULT {report.chain}: {fault.problem} at {where}: {fault.detail}")
        if broken:
            raise CommandError(f"{broken} of {len(reports)} chains broken")
        self.stdout.write(f"all {len(reports)} chains intact")
