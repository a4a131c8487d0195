"""Load the demo data (CONTRACTS.md, "Demo data") and print the demo logins."""

import os

from django.core.management.base import BaseCommand

from registry import demo_data


class Command(BaseCommand):
    help = (
        "Load the demo: 823 institutions, the 2024 and the current-year experiments, staff logins, "
        "a ministry operator, graduates and documents. Idempotent. Prints the logins."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or demo_data.DEFAULT_PASSWORD
        result = demo_data.seed(password=password)
        if options["verbosity"] > 1:
            self.stdout.write(
                f"created: {result.institutions_created} institutions, {result.users_created} logins, "
                f"{result.documents_created} documents"
            )
        rows = demo_data.login_rows(password=password)
        self.stdout.write(
            "Demo data ready: 823 institutions (277 schools, 260 colleges, 61 universities, 225 additional); "
            f"experiments {', '.join(str(year) for year in result.experiments)}."
        )
        self.stdout.write(f"Demo logins (password: {password}):")
        width = max(len(row[0]) for row in rows)
        role_width = max(len(row[1]) for row in rows)
        for login, role, where, note in rows:
            self.stdout.write(f"  {login:<{width}}  {role:<{role_width}}  {where}")
            if note:
                self.stdout.write(f"  {'':<{width}}  {note}")
