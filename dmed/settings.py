"""Settings, read from the environment with embedded defaults that need no server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from dmed.env import env_bool, env_float, env_int, env_list, env_str, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DMED_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret_key(VAR_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "nodes",
    "fhirserver",
    "medicines",
    "exchange",
    "prescribing",
    "dispensing",
    "engine",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dmed.middleware.no_store",
    "dmed.middleware.refuse_nul",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # the API's views are exempt
    # The screens' own: the API's requests (FHIR, notifications, tokens) pass by them
    # (dmed/screen_middleware.py).
    "dmed.screen_middleware.CSPMiddleware",
    "dmed.screen_middleware.SessionMiddleware",
    "dmed.screen_middleware.AuthenticationMiddleware",
    "dmed.screen_middleware.MessageMiddleware",
    "dmed.screen_middleware.HtmxMiddleware",
    "dmed.screen_middleware.vary_on_htmx",
    "dmed.screen_middleware.idle_sign_out",
    "dmed.screen_middleware.screen_audit",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out sign-in
]

ROOT_URLCONF = "dmed.urls"
WSGI_APPLICATION = "dmed.wsgi.application"

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
                "nodes.context.screens",
            ],
        },
    },
]

# Database: an SQLite file under var/ (WAL) unless DATABASE_URL names another.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dmed.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with writers taking turns in the order they come (dmed/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "dmed.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of
        # failing with "database is locked" half-way through a transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a live server's threads each get their own connection.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]

# Screens ask for news this often while something they show can still change (htmx polling).
SCREEN_POLL_MILLISECONDS = env_int("SCREEN_POLL_MILLISECONDS", 2000)

# Sessions: signed out after SESSION_IDLE_SECONDS without a page view (a screen's own polling is
# not a view), and after SESSION_MAX_SECONDS in any case.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_COOKIE_AGE = env_int("SESSION_MAX_SECONDS", 10 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Behind HTTPS (production): redirect plain HTTP, and tell browsers to keep to HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
if env_bool("SECURE_PROXY_SSL", False):  # a proxy in front ends TLS and says so
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Every screen runs on the site's own scripts and styles: nothing inline, nothing evaluated.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "https://assets.nhs.uk"],  # NHS.UK frontend's Frutiger, licensed from there
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Sign-in throttling (django-axes): a username, or an address, is locked after LOGIN_FAILURE_LIMIT
# wrong passwords, for LOGIN_LOCKOUT_MINUTES or until an administrator deletes its access attempts.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False

# The FHIR API. Bodies over this size are refused with 413.
FHIR_MAX_BODY_BYTES = env_int("FHIR_MAX_BODY_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FHIR_MAX_BODY_BYTES
# Off only for a closed network: then any caller may use any node's FHIR API.
FHIR_AUTH_REQUIRED = env_bool("FHIR_AUTH_REQUIRED", True)
# AuditEvent for every access (off only to measure what it costs: benchmarks/audit.py); a read's
# event waits in a buffer that is written this often (0: at once).
AUDIT_ENABLED = env_bool("AUDIT_ENABLED", True)
AUDIT_FLUSH_SECONDS = env_float("AUDIT_FLUSH_SECONDS", 0.5)
# How long a web process keeps what a bearer token was found to be: a revoked client, or one
# whose scopes changed, is refused (or limited) within this many seconds (0: looked up every time).
FHIR_AUTH_CACHE_SECONDS = env_float("FHIR_AUTH_CACHE_SECONDS", 5.0)
# SMART Backend Services: how long an access token from /<node>/oauth/token lasts.
SMART_ACCESS_TOKEN_SECONDS = env_int("SMART_ACCESS_TOKEN_SECONDS", 300)
FHIR_SEARCH_DEFAULT_COUNT = env_int("FHIR_SEARCH_DEFAULT_COUNT", 20)
FHIR_SEARCH_MAX_COUNT = env_int("FHIR_SEARCH_MAX_COUNT", 500)

# Workflow reactions to resources written at any node (each handler checks the node's kind).
FHIR_WRITE_HANDLERS = {
    "MedicationRequest": ["dispensing.inbound.request_stored"],
    "MedicationDispense": ["prescribing.inbound.dispense_stored", "exchange.broker.dispense_stored"],
    "Subscription": ["exchange.subscriptions.subscription_stored"],
    "Basic": ["exchange.topics.topic_stored"],  # a SubscriptionTopic (exchange/topics.py)
    "SearchParameter": ["fhirserver.custom_params.search_parameter_stored"],
    "*": ["exchange.subscriptions.resource_written"],  # after the type's own, so refusals come first
}
# The guide's triggers through the API (fhirserver/triggers.py): a write by an outside system that
# issues, cancels or dispenses, carried out by the workflow's own service.
FHIR_API_TRIGGERS = {
    "MedicationRequest": ["prescribing.api.request_written"],
    "MedicationDispense": ["dispensing.api.dispense_written"],
}
# Operations beyond the REST interactions: (type, name) -> OperationDefinition canonical.
FHIR_OPERATIONS = {
    ("Subscription", "status"): "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
    "backport-subscription-status",
    ("Subscription", "events"): "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
    "backport-subscription-events",
}
# What answers the canonical URLs of the subscription topics a node offers (declared in its
# CapabilityStatement): a function of the node.
FHIR_SUBSCRIPTION_TOPICS = "exchange.topics.topic_urls"
# Hosts that Subscription notifications may be sent to (a subscription elsewhere is refused).
SUBSCRIPTION_ENDPOINT_HOSTS = env_list("SUBSCRIPTION_ENDPOINT_HOSTS", ["127.0.0.1", "localhost"])
FHIR_DELETE_HANDLERS = {
    "Subscription": ["exchange.subscriptions.subscription_deleted"],
    "Basic": ["exchange.topics.topic_deleted"],
    "SearchParameter": ["fhirserver.custom_params.search_parameter_deleted"],
}
# Types whose resources belong to the API client that made them (fhirserver/owners.py): only it
# may change or delete one, and only it reads these elements, which others get redacted.
FHIR_OWNED_TYPES = {"Subscription": ["channel.header"]}
# Where this deployment is reached from outside (absolute URLs in notifications).
DMED_PUBLIC_URL = env_str("DMED_PUBLIC_URL", env_str("DMED_DEMO_URL", "http://127.0.0.1:8000")).rstrip("/")

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["fhirserver.http.FHIRJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["fhirserver.http.FHIRJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "fhirserver.http.FHIRContentNegotiation",
    "EXCEPTION_HANDLER": "fhirserver.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# Celery: the filesystem transport under var/ unless CELERY_BROKER_URL names a server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_FILESYSTEM_DIR = VAR_DIR / "celery"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_DIR / "queue"),
        "control_folder": str(CELERY_FILESYSTEM_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    for _folder in ("queue", "control"):
        (CELERY_FILESYSTEM_DIR / _folder).mkdir(parents=True, exist_ok=True)
# Tests use their own queue (CELERY_QUEUE), so they never take or purge a running demo's tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "dmed")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "exchange-sweep": {"task": "exchange.tasks.sweep", "schedule": env_float("EXCHANGE_SWEEP_SECONDS", 5.0)},
    # Prescriptions not dispensed in time expire where their record is held (exchange/expiry.py).
    **{
        f"expire-{app}": {"task": f"{app}.tasks.{task}", "schedule": env_float("EXPIRY_SWEEP_SECONDS", 60.0)}
        for app, task in (("exchange", "expire_shared"), ("dispensing", "expire"), ("prescribing", "expire"))
    },
    # Electronic repeat dispensing: issues released to the pharmacy 7 days before they are due.
    "release-repeats": {
        "task": "prescribing.tasks.release_repeats",
        "schedule": env_float("REPEAT_RELEASE_SECONDS", 60.0),
    },
    # The planner's statistics of the searched tables, whatever autovacuum does (fhirserver/statistics.py).
    "statistics-refresh": {
        "task": "fhirserver.tasks.statistics_refresh",
        "schedule": env_float("STATISTICS_REFRESH_SECONDS", 60.0),
    },
    # $reindex jobs whose task was lost, or whose worker died, are handed on (fhirserver/reindexing.py).
    "reindex-sweep": {
        "task": "fhirserver.tasks.reindex_sweep",
        "schedule": env_float("REINDEX_SWEEP_SECONDS", 30.0),
    },
    # Each dispenser-hosted route has its own interval (Partner.poll_interval); this is the tick.
    "poll-dispensers": {
        "task": "prescribing.tasks.poll_dispensers",
        "schedule": env_float("POLL_TICK_SECONDS", 1.0),
    },
}

# The exchange between nodes: retries back off exponentially (with jitter) up to the cap, for
# EXCHANGE_MAX_AGE_SECONDS, after which a message is dead and waits for a requeue.
EXCHANGE_CONNECT_TIMEOUT = env_float("EXCHANGE_CONNECT_TIMEOUT", 5.0)
EXCHANGE_READ_TIMEOUT = env_float("EXCHANGE_READ_TIMEOUT", 30.0)
EXCHANGE_RETRY_BASE_SECONDS = env_float("EXCHANGE_RETRY_BASE_SECONDS", 2.0)
EXCHANGE_RETRY_CAP_SECONDS = env_float("EXCHANGE_RETRY_CAP_SECONDS", 900.0)
EXCHANGE_MAX_AGE_SECONDS = env_int("EXCHANGE_MAX_AGE_SECONDS", 24 * 3600)
EXCHANGE_LEASE_SECONDS = env_int("EXCHANGE_LEASE_SECONDS", 120)
EXCHANGE_SWEEP_BATCH = env_int("EXCHANGE_SWEEP_BATCH", 500)
# A due message queued this long ago and still pending is queued again: its task was lost.
EXCHANGE_REQUEUE_SECONDS = env_float("EXCHANGE_REQUEUE_SECONDS", 60.0)
# How long each process keeps which node slugs are integration engines (whose routes relay).
ENGINE_ROUTES_CACHE_SECONDS = env_float("ENGINE_ROUTES_CACHE_SECONDS", 5.0)
# An integration engine waits this long for the broker's answer to a create or a notification
# before it holds the message to forward and answers 202 Accepted.
ENGINE_WAIT_SECONDS = env_float("ENGINE_WAIT_SECONDS", 5.0)
# A $reindex job whose worker has said nothing for this long is handed to another.
REINDEX_LEASE_SECONDS = env_int("REINDEX_LEASE_SECONDS", 120)
# A node keeping a copy of a record held elsewhere asks the holder about an expiry this often at most.
EXPIRY_ASK_SECONDS = env_int("EXPIRY_ASK_SECONDS", 600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
