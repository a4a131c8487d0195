"""Settings for the registry portal: one module, every knob from the environment.

With nothing set the portal runs embedded: SQLite, Celery tasks in-process, the
Gosuslugi emulator mounted in the portal. `DATABASE_URL` and `CELERY_BROKER_URL`
switch to the production shape. `.env.example` lists every variable.
"""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from registry.env import RATE_PERIODS, env_bool, env_float, env_int, env_list, env_rate, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
# The public verification page words its limit per second, minute or hour (no day).
_VERIFY_PERIODS = frozenset(p for p, seconds in RATE_PERIODS.items() if seconds <= 3600)
VAR_DIR = Path(env_str("REGISTRY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Demo mode: the embedded portal (no DATABASE_URL) is a demo unless told otherwise.
# Every page says so, and missing secrets are generated locally instead of refusing
# to start; production (demo off) refuses to start without them.
DEMO_MODE = env_bool("REGISTRY_DEMO", not env_str("DATABASE_URL"))

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or DEMO_MODE):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG and REGISTRY_DEMO are off")
    SECRET_KEY = "insecure-demo-only-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "registry",
    "institutions",
    "experiment",
    "documents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "registry.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=frozenset({"postgres", "postgresql", "pgsql", "sqlite"}))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "registry.sqlite3",
            # Several threads (dev server, in-process tasks) write: wait instead of
            # failing at once with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=frozenset({"redis", "rediss", "unix"}))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "cabinet:home"
LOGOUT_REDIRECT_URL = "home"

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "Europe/Moscow")
USE_TZ = True

# --- Static and uploaded files --------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Uploads stream to disk past this size instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
REGISTRY_MAX_UPLOAD_BYTES = env_int("REGISTRY_MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1)
# WhiteNoise serves static files from the gunicorn process. The demo serves them
# straight from the apps' static folders (no collectstatic step); production serves
# the collected STATIC_ROOT, which `scripts/run_portal.py` fills before starting.
WHITENOISE_USE_FINDERS = DEMO_MODE or DEBUG
if WHITENOISE_USE_FINDERS:
    # Serving from the finders, WhiteNoise still looks at STATIC_ROOT (and warns
    # when it is missing).
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_AUTOREFRESH = DEBUG

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", schemes=frozenset({"redis", "rediss", "amqp", "amqps", "pyamqp", "memory"})
)
# Without a broker, tasks run eagerly in-process so the embedded portal still
# delivers end to end.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {"task": "documents.tasks.sweep_deliveries", "schedule": 60.0},
    # Daily at 03:00 (TIME_ZONE), whenever beat was started; a purged experiment is a no-op.
    "purge-ended-experiments": {
        "task": "experiment.tasks.purge_due_experiments",
        "schedule": crontab(hour=3, minute=0),
    },
}

# --- Registry -------------------------------------------------------------------
# Base64 of 32 random bytes; private signing keys and SNILS are encrypted under keys
# derived from it. Without it only the demo/debug mode starts (with a local key).
REGISTRY_MASTER_KEY = env_str("REGISTRY_MASTER_KEY")
if not REGISTRY_MASTER_KEY and not (DEBUG or DEMO_MODE):
    raise ImproperlyConfigured(
        "REGISTRY_MASTER_KEY must be set in production: "
        "python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'"
    )
if REGISTRY_MASTER_KEY:
    # A malformed key must stop the start, not the first signature hours later.
    from registry.crypto import master_key_decode

    master_key_decode(REGISTRY_MASTER_KEY)
# Regular (non-experimental, legally valid) documents from institutions in no
# running experiment. Off by default in production: the registry is in test mode
# and switching it into full operation is a deliberate decision. On in the demo,
# whose `regular.signer` school outside the experiment forms regular documents.
REGISTRY_REGULAR_OPERATION = env_bool("REGISTRY_REGULAR_OPERATION", DEMO_MODE)
# Documents purged per transaction (see experiment/purge.py for the arithmetic).
REGISTRY_PURGE_BATCH_SIZE = env_int("REGISTRY_PURGE_BATCH_SIZE", 5000)
# Check foreign keys once per batch instead of per row where the role may: the purge's
# deletes (experiment/purge.py) and the import's inserts (registry.bulk.InsertedReferences).
# REGISTRY_PURGE_SET_BASED_CHECKS is its earlier name.
REGISTRY_SET_BASED_CHECKS = env_bool("REGISTRY_SET_BASED_CHECKS", env_bool("REGISTRY_PURGE_SET_BASED_CHECKS", True))
REGISTRY_PUBLIC_URL = env_str("REGISTRY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Public verification queries per client IP ("N/sec", "N/min" or "N/hour"): enough
# for a person, too few to enumerate numbers or codes.
VERIFY_RATE_LIMIT = env_rate("VERIFY_RATE_LIMIT", "30/min", periods=_VERIFY_PERIODS)
# The verify-by-code statement as a prepared statement of each connection (documents/verification.py);
# off behind a pooler that cannot keep them (PgBouncer older than 1.21 in transaction mode).
REGISTRY_PREPARED_VERIFY = env_bool("REGISTRY_PREPARED_VERIFY", True)

# --- Gosuslugi ------------------------------------------------------------------
GOSUSLUGI_EMULATOR = env_bool("GOSUSLUGI_EMULATOR", True)
# Empty with the emulator mounted: the client calls the portal's own WSGI app
# in-process.
GOSUSLUGI_URL = env_str("GOSUSLUGI_URL")
GOSUSLUGI_TOKEN = env_str("GOSUSLUGI_TOKEN", "emulator-token" if GOSUSLUGI_EMULATOR else "")
GOSUSLUGI_TIMEOUT = env_float("GOSUSLUGI_TIMEOUT", 10.0)
GOSUSLUGI_MAX_ATTEMPTS = env_int("GOSUSLUGI_MAX_ATTEMPTS", 8)
# Retry delays live in the Delivery row: exponential backoff from BASE seconds,
# capped at MAX, with full jitter; a 429's Retry-After is a floor.
GOSUSLUGI_BACKOFF_BASE = env_float("GOSUSLUGI_BACKOFF_BASE", 5.0)
GOSUSLUGI_BACKOFF_MAX = env_float("GOSUSLUGI_BACKOFF_MAX", 3600.0)
# How long claimed rows stay a worker's before the sweep may hand them to another (a
# killed worker's rows come back after this): LEASE seconds plus TIMEOUT per row of
# the claimed batch, which the worker delivers one after another.
GOSUSLUGI_LEASE = env_float("GOSUSLUGI_LEASE", 30.0)
# Rows claimed and delivered by one task: amortises the broker message and the
# claim/finish queries over many POSTs.
GOSUSLUGI_BATCH_SIZE = env_int("GOSUSLUGI_BATCH_SIZE", 25)
# Rows the sweep re-sends per run before it continues in a follow-up task.
GOSUSLUGI_SWEEP_LIMIT = env_int("GOSUSLUGI_SWEEP_LIMIT", 2000)
# Retries due sooner than this are also nudged with a short countdown task (the row
# stays the source of truth; the sweep catches whatever the nudge misses).
GOSUSLUGI_NUDGE_MAX = env_float("GOSUSLUGI_NUDGE_MAX", 30.0)
# The emulator's state: Redis when set (shared by every process and host), else its
# own SQLite file (shared by the processes of one machine).
GOSUSLUGI_EMULATOR_REDIS_URL = env_str("GOSUSLUGI_EMULATOR_REDIS_URL", REDIS_URL)
GOSUSLUGI_EMULATOR_DB = Path(env_str("GOSUSLUGI_EMULATOR_DB", str(VAR_DIR / "gosuslugi-emulator.sqlite3")))

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["registry.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "registry.api.negotiation.ApiContentNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["registry.api.throttling.ApiKeyRateThrottle"],
    # Per partner key, by the key's scope: "N/s", "N/min", "N/hour" or "N/day".
    "DEFAULT_THROTTLE_RATES": {
        "issue": env_rate("REGISTRY_API_RATE_ISSUE", "6000/min"),
        "verify": env_rate("REGISTRY_API_RATE_VERIFY", "60000/min"),
    },
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Digital education documents registry API",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "DESCRIPTION": (
        "Partner API of the registry. Institution information systems issue documents with an `issue` "
        "key; universities and employers verify them with a `verify` key. Every error is JSON "
        '`{"detail", "code", "errors": {field: [messages]}}`.'
    ),
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.api.schema.add_response_headers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStateEnum": "documents.models.DeliveryState",
        "DocumentStatusEnum": "documents.models.DocumentStatus",
        "DocumentKindEnum": "documents.kinds.DocumentKind",
        "InstitutionKindEnum": "institutions.models.InstitutionKind",
    },
}

# === Security ====================================================================
# One section, owned by the security hardening: production defaults that pass
# `manage.py check --deploy`, login throttling (django-axes), a second factor for
# the admin (django-otp), and a Content-Security-Policy (django-csp).
from datetime import timedelta  # noqa: E402

from csp.constants import NONCE, NONE, SELF  # noqa: E402

# The admin site is the OTP-enforcing one (registry/admin_site.py): staff reach it
# only with a verified TOTP device.
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "registry.apps.RegistryAdminConfig"
INSTALLED_APPS += ["axes", "django_otp", "django_otp.plugins.otp_totp", "csp"]
MIDDLEWARE[1:1] = ["csp.middleware.CSPMiddleware", "registry.middleware.SecurityHeadersMiddleware"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
# Axes turns a flagged login request into the lockout page: it must wrap the rest.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    "registry.login_protection.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Logins: after AXES_FAILURE_LIMIT failures for one username from one address, that
# pair is locked for the cool-off. Locking the pair (not the username alone) keeps an
# attacker from locking a real user out of their own office.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_VERBOSE = False
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "registry.login_protection.lockout_response"
# Behind N reverse proxies the client address is the N-th from the right of
# X-Forwarded-For; 0 trusts no header (REMOTE_ADDR).
AXES_IPWARE_PROXY_COUNT = env_int("REGISTRY_PROXY_COUNT", 0, minimum=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# Sessions end after SESSION_COOKIE_AGE seconds of inactivity: every request
# pushes the expiry forward.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 30 * 60, minimum=60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# XLSX archives are checked before parsing (registry/uploads.py): a file over these
# is refused as a zip bomb. Real workbooks have a dozen parts compressing 5-20x.
REGISTRY_XLSX_MAX_MEMBERS = env_int("REGISTRY_XLSX_MAX_MEMBERS", 1000, minimum=1)
REGISTRY_XLSX_MAX_UNCOMPRESSED_BYTES = env_int("REGISTRY_XLSX_MAX_UNCOMPRESSED_BYTES", 256 * 1024 * 1024, minimum=1)
REGISTRY_XLSX_MAX_RATIO = env_int("REGISTRY_XLSX_MAX_RATIO", 200, minimum=1)

# Two-factor: TOTP devices are named after the portal in authenticator apps.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Education documents registry")

# Only the portal's own scripts and styles; no inline script or style. A nonce is
# added to a response only when its template asks for one (request.csp_nonce) —
# only the API docs page does, for Swagger UI's start-up script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # data: for the inline SVG icons in the admin's and Swagger UI's CSS.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

if not DEBUG and not DEMO_MODE:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # The health check is probed over plain HTTP by the load balancer.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["upgrade-insecure-requests"] = True
# === End of security ==============================================================

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # axes reports every login at INFO (its lockouts are warnings); httpx logs every
    # Gosuslugi request at INFO, one line per delivery: both are noise at INFO.
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
