"""mailsec settings: every value comes from the environment (see README, "Configuration")."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from mailsec.env import Env
from mailsec.queues import celery_queue_settings

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

VAR_DIR = Path(env.str("MAILSEC_VAR_DIR", str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env.secret_key("MAILSEC_SECRET_KEY", fallback_file=VAR_DIR / "secret_key")
# Encrypts stored secrets (mailbox passwords); separate from SECRET_KEY so that rotating one
# never loses the other.
MAILSEC_ENCRYPTION_KEYS = env.fernet_keys(
    "MAILSEC_ENCRYPTION_KEY", fallback_file=VAR_DIR / "encryption_key"
)
DEBUG = env.bool("MAILSEC_DEBUG", default=False)
ALLOWED_HOSTS = env.list("MAILSEC_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("MAILSEC_CSRF_TRUSTED_ORIGINS", [])
# Where people reach the app: makes the links in alert e-mails and webhooks absolute.
MAILSEC_SITE_URL = env.site_url("MAILSEC_SITE_URL")
PORT = env.int("PORT", 8000, minimum=1, maximum=65535)

# Behind a TLS-terminating proxy: secure cookies, HSTS on every response, the proxy's scheme
# header, and plain HTTP redirected (but /healthz, which load balancers ask over plain HTTP).
HTTPS = env.bool("MAILSEC_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("MAILSEC_HSTS_SECONDS", 31536000, minimum=1, maximum=63072000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # `preload` sent from a subdomain has no effect (the list takes registrable domains only).
    SECURE_HSTS_PRELOAD = env.bool("MAILSEC_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = 14 * 24 * 3600

# Only the app's own scripts, styles and images: no inline script or style anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
        "browsing-topics",
    )
}

# Failed logins (the login page and the admin's) are counted per account and per address by
# django-axes; past the limit both are refused until the cool-off ends or staff unlock them
# (admin, "Access attempts": delete the entry). Addresses come from REMOTE_ADDR unless
# MAILSEC_PROXY_COUNT proxies in front append X-Forwarded-For.
AXES_FAILURE_LIMIT = env.int("MAILSEC_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=env.int("MAILSEC_LOGIN_LOCKOUT_MINUTES", 30, minimum=1, maximum=525600)
)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# A success does not wipe the count: it would also wipe the failures from the same address,
# so logging in to one's own account between guesses would lift the lock on another's.
AXES_RESET_ON_SUCCESS = False
_proxy_count = env.int("MAILSEC_PROXY_COUNT", 0, minimum=0, maximum=10)
if _proxy_count:
    AXES_IPWARE_PROXY_COUNT = _proxy_count
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Two-factor sign-in: TOTP devices and single-use recovery codes (django-otp).
OTP_TOTP_ISSUER = "mailsec"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's own files, served from static/ (no CDN).
    "drf_spectacular_sidecar",
    "mailsec",
    "mailsec.api",
    "domains",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mailsec.requests.RefuseNulQueryMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session (where a signed-in user's language and time zone are kept).
    "mailsec.accounts.locale.UserLocaleMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "mailsec.accounts.middleware.NoStoreMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "mailsec.accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mailsec.urls"
WSGI_APPLICATION = "mailsec.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mailsec.context_processors.navigation",
            ],
            "builtins": ["mailsec.templatetags.localized"],
        },
    },
]

DATABASES = {
    "default": env.database("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailsec.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker started by the tests can open the test database;
    # WAL and a busy timeout so the web app and the worker can write side by side.
    # One per test process, so two test runs on one machine don't share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "domains:list"
LOGOUT_REDIRECT_URL = "login"
# Password reset links (sent only when MAILSEC_EMAIL_HOST is set) are signed and expire.
PASSWORD_RESET_TIMEOUT = 2 * 3600
MAILSEC_INVITATION_DAYS = env.int("MAILSEC_INVITATION_DAYS", 7, minimum=1, maximum=90)

LANGUAGE_CODE = "en"
# The languages of the interface; the command line and JSON outputs stay in English.
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# English keeps ISO short dates (mailsec/formats); French takes Django's own.
FORMAT_MODULE_PATH = ["mailsec.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# E-mail: SMTP when MAILSEC_EMAIL_HOST is set, else messages are written to the log.
EMAIL_HOST = env.str("MAILSEC_EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.int("MAILSEC_EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env.str("MAILSEC_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = env.secret("MAILSEC_EMAIL_PASSWORD") or ""
    EMAIL_USE_TLS = env.bool("MAILSEC_EMAIL_STARTTLS", default=EMAIL_PORT == 587)
    EMAIL_USE_SSL = env.bool("MAILSEC_EMAIL_SSL", default=EMAIL_PORT == 465)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("Set MAILSEC_EMAIL_STARTTLS or MAILSEC_EMAIL_SSL, not both.")
    EMAIL_TIMEOUT = 30
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("MAILSEC_EMAIL_FROM", "mailsec@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# DNS and probes.
MAILSEC_DNS_NAMESERVERS = env.nameservers("MAILSEC_DNS_NAMESERVERS")
MAILSEC_ALLOW_PRIVATE_TARGETS = env.bool("MAILSEC_ALLOW_PRIVATE_TARGETS", default=False)
# DNSSEC is validated by mailsec itself, from these DS records down (default: the root's KSKs).
MAILSEC_DNSSEC_TRUST_ANCHORS = env.list(
    "MAILSEC_DNSSEC_TRUST_ANCHORS",
    [
        ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
        ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
    ],
)
# Certificates of remote servers (MTA-STS policy hosts, later SMTP) are checked against this
# PEM bundle; unset: the system's trust store.
MAILSEC_TLS_CA_FILE = env.str("MAILSEC_TLS_CA_FILE")
# The name the protocol probes give in EHLO; unset: this machine's name when it is fully
# qualified, else the address literal of the connection's local end (domains/probes/probe.py).
MAILSEC_PROBE_HELO_NAME = env.str("MAILSEC_PROBE_HELO_NAME", "")

# Celery: Redis when REDIS_URL is set, else a broker in files under var/ so `make run` needs no
# server (one machine only).
REDIS_URL = env.redis_url("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A task taken but not acknowledged (a worker died under it) goes back to the queue after
    # this long: longer than any task may run (the longest time limit is 3600 s), or a task
    # still running would be handed to a second worker. The reaper (mailsec/reaper.py) queues
    # what a dead worker held long before this.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # How often an idle worker looks for a message (kombu's default: every second). The
        # worker also notices a stop only between looks: Ctrl-C waited for the last one.
        "polling_interval": 0.2,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"
# The cache holds the API's rate-limit counters: it must be shared by every process (gunicorn's
# workers), so Redis when there is one, else files under var/ (one machine, like the broker).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("MAILSEC_QUEUE_PREFIX", "") + "mailsec",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker's timer thread sleeps at most this long (Celery's default: 1 s); a stopping worker
# waits for it to wake, so a stop took up to a second more.
CELERY_WORKER_TIMER_PRECISION = 0.2
# A task is acknowledged once done, and given back to the queue when the process running it
# dies (the OOM killer), so a worker's death loses nothing: every task is safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending a task retries for about 4.5 s (the default gives up after 0.6 s): long enough for a
# Redis restart to load its append-only file, so a dispatcher's committed claims still get
# their tasks (a claim left without one waits for the reaper, half an hour).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 6,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
_queues = celery_queue_settings(env.str("MAILSEC_QUEUE_PREFIX", ""))
CELERY_TASK_DEFAULT_QUEUE = _queues["task_default_queue"]
CELERY_TASK_QUEUES = _queues["task_queues"]
CELERY_TASK_ROUTES = _queues["task_routes"]
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "mailsec.tasks.heartbeat", "schedule": 60.0},
    "dispatch-due-checks": {"task": "domains.tasks.dispatch_due_checks", "schedule": 60.0},
    "send-alert-digests": {"task": "domains.tasks.send_digests", "schedule": 3600.0},
    "prune-run-details": {"task": "domains.tasks.prune_run_details", "schedule": 86400.0},
    "prune-audit-log": {"task": "mailsec.tasks.prune_audit_log", "schedule": 86400.0},
    "poll-mailboxes": {"task": "reports.tasks.poll_mailboxes", "schedule": 60.0},
    "prune-reports": {"task": "reports.tasks.prune_reports", "schedule": 86400.0},
    "reap-stale-work": {"task": "mailsec.tasks.reap_stale", "schedule": 60.0},
    "refresh-sources": {"task": "reports.tasks.refresh_sources", "schedule": 3600.0},
    "drain-senders": {"task": "reports.tasks.drain_pending_senders", "schedule": 60.0},
}
# The REST API (mailsec/api/): tokens or the session; requests per token (or user) and minute.
MAILSEC_API_RATE = env.int("MAILSEC_API_RATE", 600, minimum=1, maximum=1_000_000)
# Password reset e-mails asked for in an hour, per client address and per address asked about.
MAILSEC_PASSWORD_RESET_RATE = env.int(
    "MAILSEC_PASSWORD_RESET_RATE", 5, minimum=1, maximum=1_000_000
)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mailsec.api.authentication.TokenAuthentication",
        "mailsec.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mailsec.api.permissions.TeamAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["mailsec.api.throttling.PerTokenThrottle"],
    "DEFAULT_PAGINATION_CLASS": "mailsec.api.pagination.Cursor",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mailsec API",
    "DESCRIPTION": "Domains, checks, reports and alert channels of one team. Send a token of "
    "the team's settings page as `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mailsec.api.schema.portable_integers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "domains.models.RunStatus",
        "OutcomeStatusEnum": ["imported", "duplicate", "invalid"],
    },
}
# /metrics (Prometheus): for a bearer token, or for these addresses (CIDR allowed); neither
# set, it answers 404.
MAILSEC_METRICS_TOKEN = env.secret("MAILSEC_METRICS_TOKEN")
try:
    MAILSEC_METRICS_ALLOW = [
        ipaddress.ip_network(item, strict=False) for item in env.list("MAILSEC_METRICS_ALLOW", [])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"MAILSEC_METRICS_ALLOW: {exc}") from None
# A team's audit log keeps this many days.
MAILSEC_AUDIT_DAYS = env.int("MAILSEC_AUDIT_DAYS", 400, minimum=1, maximum=36500)
# Old runs keep their summary; their raw records and findings go after this many days.
MAILSEC_RUN_DETAIL_DAYS = env.int("MAILSEC_RUN_DETAIL_DAYS", 90, minimum=1, maximum=36500)

# Reports: the most bytes one input may decompress to (a zip or gzip bomb is
# refused as soon as it passes this), and the most bytes of one upload or file.
MAILSEC_REPORT_MAX_MB = env.int("MAILSEC_REPORT_MAX_MB", 100, minimum=1, maximum=100_000)
MAILSEC_REPORT_MAX_BYTES = MAILSEC_REPORT_MAX_MB * 1024 * 1024
# Aggregate records, failure reports and kept inputs go after this many days; the daily
# rollups stay, so charts of older periods still work (reports/retention.py).
MAILSEC_REPORT_RETENTION_DAYS = env.int(
    "MAILSEC_REPORT_RETENTION_DAYS", 400, minimum=1, maximum=36500
)
# A sender first seen in a domain's reports with at least this many messages (in the days of
# the report that shows it) is a "new sender" event (reports/senders/news.py).
MAILSEC_NEW_SENDER_MESSAGES = env.int(
    "MAILSEC_NEW_SENDER_MESSAGES", 100, minimum=1, maximum=1_000_000_000
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env.choice(
            "MAILSEC_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        ),
    },
}
