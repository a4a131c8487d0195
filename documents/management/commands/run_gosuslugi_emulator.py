"""Run the Gosuslugi emulator as its own HTTP service (gunicorn, threads).

    python manage.py run_gosuslugi_emulator --port 8100
    GOSUSLUGI_URL=http://127.0.0.1:8100 ...   # point the registry at it

The contract is served at the root (/documents, /accounts/{snils}/documents,
/_faults, /_state) and the personal account page at /. Its worker processes share
one state: in Redis (GOSUSLUGI_EMULATOR_REDIS_URL, default REDIS_URL) or else in
the emulator's SQLite file (GOSUSLUGI_EMULATOR_DB).
"""

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError
from django.db import connections


class Command(BaseCommand):
    help = "Serve the Gosuslugi emulator on its own port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--workers", type=int, default=1, help="processes")
        parser.add_argument("--threads", type=int, default=16, help="threads per process")
        parser.add_argument("--token", default=None, help="the bearer token callers must send (GOSUSLUGI_TOKEN)")

    def handle(self, *args, host, port, workers, threads, token, **options):
        from gunicorn.app.base import BaseApplication

        if token is not None:
            settings.GOSUSLUGI_TOKEN = token
        if not settings.GOSUSLUGI_TOKEN:
            raise CommandError("set GOSUSLUGI_TOKEN or --token: the emulator refuses unauthenticated calls")
        # This process serves only the emulator, at the root.
        settings.ROOT_URLCONF = "documents.emulator_urls"
        connections.close_all()
        from documents.emulator import store

        store()  # create the state's tables once, before the workers fork
        application = WSGIHandler()
        options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # Emulated timeouts hang a thread on purpose; the arbiter must not kill it.
            "timeout": 120,
            "graceful_timeout": 3,
            "keepalive": 30,
            "backlog": 2048,
            "accesslog": None,
            "loglevel": "warning",
        }

        class Server(BaseApplication):
            def load_config(self):
                for name, value in options.items():
                    self.cfg.set(name, value)

            def load(self):
                return application

        self.stdout.write(f"Gosuslugi emulator on http://{host}:{port}/ (workers={workers}, threads={threads})")
        self.stdout.flush()
        Server().run()
