from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.otp import totp_enrol


class Command(BaseCommand):
    help = (
        "Give a ministry operator or superuser a TOTP device for the admin's second factor; "
        "prints the secret and the otpauth URI once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="device name (replaces one of the same name)")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not (user.is_staff or user.is_superuser):
            raise CommandError(f"{username!r} is not staff: only the admin asks for a second factor")
        secret, uri = totp_enrol(user, name=name)
        self.stdout.write(f"TOTP secret (base32): {secret}")
        self.stdout.write(f"otpauth URI: {uri}")
