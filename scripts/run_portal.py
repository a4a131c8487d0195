#!/usr/bin/env python3
"""Start the portal the way `make run` does (CONTRACTS.md, "Commands").

Migrates, loads the demo data (printing the logins), then serves on
127.0.0.1:$PORT (default 8000):
- embedded (DATABASE_URL or CELERY_BROKER_URL unset): gunicorn alone; SQLite, tasks
  run in-process, static files served by WhiteNoise from the apps' folders;
- production shape (both set): honcho starts the Procfile's web (gunicorn), Celery
  worker and Celery beat together; Ctrl-C stops all three.

`make run` is a demo: REGISTRY_DEMO defaults to on here even against PostgreSQL, so
missing secrets are generated locally. A real deployment sets REGISTRY_DEMO=0 and
the secrets (README.md, "Production").
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)  # noqa: S603 (fixed argv)


def main() -> None:
    os.chdir(ROOT)
    os.environ.setdefault("REGISTRY_DEMO", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    # Processes started by honcho find gunicorn and celery in the same virtualenv.
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    port = os.environ.setdefault("PORT", "8000")
    var_dir = Path(os.environ.setdefault("REGISTRY_VAR_DIR", str(ROOT / "var")))
    var_dir.mkdir(parents=True, exist_ok=True)
    production = bool(os.environ.get("DATABASE_URL") and os.environ.get("CELERY_BROKER_URL"))

    _manage("migrate", "--noinput", "-v", "0")
    if os.environ["REGISTRY_DEMO"].strip().lower() in ("0", "false", "no", "off", ""):
        # Outside the demo WhiteNoise serves the collected STATIC_ROOT only.
        _manage("collectstatic", "--noinput", "-v", "0")
    if os.environ.get("REGISTRY_SEED_DEMO", "1") not in ("0", "false", "no", "off"):
        _manage("seed_demo")
    shape = "production shape: web, Celery worker and beat" if production else "embedded: SQLite, in-process tasks"
    print(f"\nServing http://127.0.0.1:{port}/ ({shape}); Ctrl-C stops it.\n", flush=True)

    if production:
        os.execv(  # noqa: S606 (fixed argv, no shell)
            _tool("honcho"), ["honcho", "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT)]
        )
    os.execv(  # noqa: S606 (fixed argv, no shell)
        _tool("gunicorn"),
        [
            "gunicorn",
            "registry.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            # One process by default: without Redis the Gosuslugi emulator keeps its
            # state in memory, which its threads share and other processes would not.
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "1"),
            "--threads",
            "8",
            # In-process tasks (imports, deliveries) run inside requests in the demo.
            "--timeout",
            "300",
            "--access-logfile",
            "-",
            # No control socket in the home directory: two portals (a test and a
            # demo) must not fight over it.
            "--no-control-socket",
        ],
    )


if __name__ == "__main__":
    main()
