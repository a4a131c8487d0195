"""Create a partner API key and print it once, as the last line of the output."""

from django.core.management.base import BaseCommand, CommandError

from institutions.apikeys import api_key_create
from institutions.models import ApiKeyScope, Institution
from registry.errors import DomainError


class Command(BaseCommand):
    help = "Create a partner API key: --scope verify, or --scope issue --institution INN. Prints the key once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The partner system the key is for.")
        parser.add_argument("--scope", required=True, choices=ApiKeyScope.values)
        parser.add_argument("--institution", metavar="INN", help="For --scope issue: the institution's INN.")

    def handle(self, *args, name, scope, institution, **options):
        inst = None
        if institution:
            inst = Institution.objects.filter(inn=institution.strip()).first()
            if inst is None:
                raise CommandError(f"No institution with INN {institution}.")
        try:
            row, plaintext = api_key_create(name=name, scope=scope, institution=inst)
        except DomainError as exc:
            details = "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.errors.items())
            raise CommandError(f"{exc.message} {details}".strip()) from None
        self.stdout.write(
            f"Created {row.get_scope_display().lower()} key {row.prefix} for {row.institution or row.name}. "
            "Store it now: it is not shown again."
        )
        self.stdout.write(plaintext)
