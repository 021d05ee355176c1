"""Django settings, read from the environment (see the README's settings table).

Embedded defaults (no variable set) give the demo set-up: SQLite and a kombu
filesystem broker under ``var/``, files under ``var/media/``.
"""

import os
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, "
            "or DEBUG=1 for a local development run."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

# HTTPS deployments (README "Running in production"): HTTPS=1 when the portal is reached
# over TLS switches on the redirect, Secure cookies and HSTS; each can be set on its own.
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto, SECURE_PROXY_SSL_HEADER=1
# makes the portal see https (absolute URLs such as DICOMweb RetrieveURL and BulkDataURI
# then start with https://). Only set it when the proxy overwrites that header.
HTTPS = env_bool("HTTPS")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp 4; README "Content-Security-Policy"). Scripts only from
# the portal's own static files or carrying the response's nonce (portal.csp). Styles allow
# 'unsafe-inline' (style="" attributes and <style> elements, never script): Cornerstone3D's
# annotation text boxes set a style attribute (tools drawingSvg/drawTextBox.js), the comparison
# page's ROC plot is matplotlib's inline SVG (style attributes and a <style> element), and
# the admin's change lists, Swagger UI and DRF's browsable API have inline styles of their own.
# A nonce in style-src would switch 'unsafe-inline' off (CSP Level 3, section 6.7.3.3).
# Workers: the decode worker is a same-origin module; blob: for workers a library makes itself.
# The codecs' WebAssembly is compiled in that worker, whose script comes without this policy.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:", "blob:"],
        "worker-src": [csp.SELF, "blob:"],
        "connect-src": [csp.SELF],
        "frame-ancestors": [csp.NONE],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
    },
}
# Where browsers send violation reports (e.g. a collector of the hospital's SIEM); none by default.
if os.environ.get("CSP_REPORT_URI"):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [os.environ["CSP_REPORT_URI"]]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored as digests, with an expiry (portal.authentication)
    "axes",  # failed-login lockout per account and per address (portal.authentication)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "csp",  # django-csp: its system checks (Django's own CSP arrives in 6.0)
    "portal",
    "archive",
    "annotations",
    "inference",
    "evaluation",
    "cohort",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files (the decode worker included) leave without the page policy.
    "portal.csp.NonceEveryResponseCSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.SessionIdleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last (django-axes' rule): turns a login refused during a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.roles.roles_context",
                "portal.context_processors.vocabulary",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection is checked before a request reuses it: after a database restart
        # the next request reconnects instead of failing (Django docs, "Persistent connections").
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web process read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["timeout"] = 30

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's full set: not like the username or e-mail, at least 12 characters, not a
# common password, not only digits (password changes, the admin, createsuperuser).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A browser session ends after SESSION_IDLE_MINUTES without a request (portal.middleware
# SessionIdleMiddleware slides the expiry at most once a minute, not on every request).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 60)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
# Failed logins (django-axes): LOGIN_FAILURE_LIMIT failures lock an account (from any address),
# and as many from one address (against any accounts) lock that address, for LOGIN_COOLOFF_MINUTES
# after the last failure; a correct password is refused meanwhile. A successful login clears
# its own account's failures (portal.authentication.forget_failed_logins). Unlock at once:
# the admin's "Access attempts" or `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins; every caller passes the request
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False  # our own rule instead, see above
AXES_LOCKOUT_CALLABLE = "portal.authentication.lockout_response"
AXES_CLIENT_IP_CALLABLE = "annotations.audit.client_address"
AXES_VERBOSE = False  # no "AXES: BEGIN ..." banner on every manage.py command and worker start
# Reverse proxies in front of the portal that append to X-Forwarded-For: the client address
# for the lockout and the API throttles is the entry that many from the right (0: REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# API tokens (django-rest-knox; `manage.py drf_create_token USER [--expires-days N]`): refused
# this many days after they are issued unless the command says otherwise (0: never expire).
API_TOKEN_EXPIRES_DAYS = env_int("API_TOKEN_EXPIRES_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_EXPIRES_DAYS) if API_TOKEN_EXPIRES_DAYS else None,
    "AUTO_REFRESH": False,
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# STORAGE_BACKEND=archive.object_storage.S3Storage for an S3-compatible store (AWS S3, MinIO): django-storages'
# S3Storage that never overwrites an object; the plain class, documented here before, is taken to mean it.
# The AWS_* variables below configure it (README "Object storage (S3, MinIO)").
STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
# The class's name before the archive had its own app (portal.object_storage) still works.
if STORAGE_BACKEND in ("storages.backends.s3.S3Storage", "portal.object_storage.S3Storage"):
    STORAGE_BACKEND = "archive.object_storage.S3Storage"
STORAGES = {
    "default": {"BACKEND": STORAGE_BACKEND},
    # collectstatic writes a .gz and (with the Brotli package) a .br beside every file;
    # whitenoise serves the smallest one the browser accepts.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# The case page's chunks are named by their content hash (frontend/build.mjs): cached for good.
# Source maps (15+ MB, fetched only by a developer's devtools) are not pre-compressed:
# brotli on them tripled collectstatic's time (56 s), which `make demo` runs at every start.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
WHITENOISE_IMMUTABLE_FILE_TEST = r"/portal/build/chunks/[\w-]+-[A-Z0-9]{8}\.js(\.map)?$"
for _name in (
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "AWS_S3_REGION_NAME",
    "AWS_S3_ADDRESSING_STYLE",
    "AWS_LOCATION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
):
    if os.environ.get(_name):
        globals()[_name] = os.environ[_name]

# Uploads (the upload API, the upload page, STOW-RS): the body up to UPLOAD_MAX_TOTAL_MB, copied
# to a temporary file (in FILE_UPLOAD_TEMP_DIR, the system's by default) as it is read; one file
# up to UPLOAD_MAX_FILE_MB; files, unpacked bytes and the zip ratio counted over the whole upload.
UPLOAD_MAX_FILE_BYTES = env_int("UPLOAD_MAX_FILE_MB", 512) * 1024 * 1024
UPLOAD_MAX_TOTAL_BYTES = env_int("UPLOAD_MAX_TOTAL_MB", 4096) * 1024 * 1024
UPLOAD_MAX_MEMBERS = env_int("UPLOAD_MAX_MEMBERS", 20000)
UPLOAD_MAX_ZIP_RATIO = env_int("UPLOAD_MAX_ZIP_RATIO", 200)
# Decoded pixel data of one instance (Rows x Columns x NumberOfFrames x samples x bytes), checked
# from the header before anything is decoded.
PIXELS_MAX_BYTES = env_int("PIXELS_MAX_MB", 1024) * 1024 * 1024
# Every other request body (forms, the login page, the JSON API): refused above this size
# by its Content-Length before it is read (portal.middleware); the upload API and STOW-RS
# have UPLOAD_MAX_TOTAL_BYTES instead.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REQUEST_MAX_MB", 10) * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_MEMBERS
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Seconds a web process may reuse a token's user and a "user may see study" answer (0: off).
# Revocations are seen at once by the process that made them, by the others within this time.
ACCESS_CACHE_SECONDS = env_int("ACCESS_CACHE_SECONDS", 30)
# Megabytes of WADO-RS series metadata (JSON text) a process keeps (archive.dicomweb.wado; 0: off).
DICOMWEB_METADATA_CACHE_MB = env_int("DICOMWEB_METADATA_CACHE_MB", 64)
DEID_PSEUDONYM_PATTERN = os.environ.get("DEID_PSEUDONYM_PATTERN", "")
# The key of the server de-identifier's pseudonyms and UIDs: not SECRET_KEY, which signs
# sessions and is rotated for other reasons (rotating DEID_SECRET changes every new pseudonym).
DEID_SECRET = os.environ.get("DEID_SECRET", "")
if not DEBUG and (not DEID_SECRET or DEID_SECRET == SECRET_KEY):
    raise ImproperlyConfigured(
        ("DEID_SECRET is not set" if not DEID_SECRET else "DEID_SECRET is the same as SECRET_KEY")
        + ". Set DEID_SECRET in the environment to a secret of its own (not SECRET_KEY), "
        "or DEBUG=1 for a local development run."
    )
DEID_SECRET = DEID_SECRET or "insecure-development-deid-secret-only-for-debug"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated script gets 401 with WWW-Authenticate: Token.
        # The token's user is remembered per process for ACCESS_CACHE_SECONDS (see archive.models.AccessCache).
        "portal.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "archive.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "archive.api.exception_handler",
    # Requests per user (or per address without a login) on the API: above it 429 with
    # Retry-After. Counted per web process. Bulk image reads (DICOMweb retrieval, instance
    # files), which the viewer sends in bursts, are not throttled (throttle_classes = []).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON_RATE", "60/minute") or None,
        "user": os.environ.get("API_THROTTLE_USER_RATE", "1200/minute") or None,
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Renal mass reader-study portal API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its documentation page are for logged-in users (session or token) only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from the drf-spectacular-sidecar package: the page works on a network without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "PhaseEnum": "archive.models.Phase",
        "SubtypeEnum": "annotations.models.Subtype",
    },
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # A task not acknowledged within this time is redelivered: keep it above the longest training run.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 12 * 3600)
    }
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "inference.tasks.train": {"queue": "gpu"},
    "inference.tasks.score": {"queue": "gpu"},
    "inference.tasks.score_lesion": {"queue": "gpu"},
    "portal.tasks.train_demo_model": {"queue": "gpu"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Prefetch 1 so a long training task never holds a second one hostage on a busy GPU.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Comparison pages with more ratings (lesions x (readers + models)) than this are computed by a worker.
EVALUATION_SYNC_MAX_RATINGS = env_int("EVALUATION_SYNC_MAX_RATINGS", 2500)
# The AUC difference the comparison page plans the next aided-versus-unaided study for (?effect= overrides).
EVALUATION_PLAN_EFFECT = float(os.environ.get("EVALUATION_PLAN_EFFECT") or 0.05)
INFERENCE_HEARTBEAT_TIMEOUT_MINUTES = env_int("INFERENCE_HEARTBEAT_TIMEOUT_MINUTES", 15)
# A lesion whose ROIs or pathology change is scored this many seconds after the first save; the
# saves in between share that one task (inference.services.score_changed_lesion).
INFERENCE_SCORING_DEBOUNCE_S = env_int("INFERENCE_SCORING_DEBOUNCE_S", 10)
CELERY_BEAT_SCHEDULE = {
    # Runs whose worker died (no heartbeat) are marked failed, never left "running".
    "sweep-stale-training-runs": {"task": "inference.tasks.sweep_stale_runs", "schedule": 300.0},
    # Runs saved while Redis was down (queued, no task id) are sent when it is back.
    "dispatch-waiting-training-runs": {
        "task": "inference.tasks.dispatch_waiting_runs",
        "schedule": 60.0,
    },
    # Lesions whose scoring could not be sent (Redis was down) are sent when it is back.
    "dispatch-waiting-lesion-scoring": {
        "task": "inference.tasks.dispatch_waiting_scoring",
        "schedule": 60.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
