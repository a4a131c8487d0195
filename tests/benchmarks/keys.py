"""Partner API keys for the bench, through the contract command (`create_api_key`)."""

import io


def create_api_key(*, name: str, scope: str, institution_inn: str | None = None) -> str | None:
    """Return a new key (the command's last output line), or None if the command is not on main."""
    from django.core.management import call_command, get_commands

    if "create_api_key" not in get_commands():
        return None
    args = ["--name", name, "--scope", scope]
    if institution_inn:
        args += ["--institution", institution_inn]
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    lines = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    return lines[-1] if lines else None
