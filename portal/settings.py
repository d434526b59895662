"""Settings for the portal, all read from the environment (see the README's configuration table).

With nothing set, the portal runs on embedded defaults: SQLite and Celery's filesystem broker
under PORTAL_DATA_DIR, mail kept for staff on the console's Demo mail page. DATABASE_URL and
REDIS_URL switch to servers.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from phonenumbers import SUPPORTED_REGIONS

from portal.env import (
    ConfigurationError,
    data_dir_setting,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_trusted_proxies,
)

# Everything the portal's processes create (the SQLite database, generated keys, broker messages,
# packages, the demo shop) holds personal data or secrets: files 0600, folders 0700, from birth.
os.umask(0o077)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir_setting(BASE_DIR)
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
# A data folder made before this (or by hand) is closed too, which also hides any older file in
# it; one owned by another user is left as its owner set it.
if DATA_DIR.stat().st_uid == os.geteuid() and DATA_DIR.stat().st_mode & 0o077:
    DATA_DIR.chmod(0o700)


def _persistent_secret(name: str, generate) -> str:
    """A secret kept in the data directory so the embedded default survives restarts.

    Written to a private temporary file and linked into place, so processes starting together
    agree on one value and none reads a half-written file."""
    path = DATA_DIR / name
    if not path.exists():
        fd, staged = tempfile.mkstemp(dir=DATA_DIR, prefix=f".{name}.")  # created 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(generate())
            os.link(staged, path)
        except FileExistsError:
            pass  # another process linked its value first; everyone reads that one
        finally:
            os.unlink(staged)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") or _persistent_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
DEBUG = env_bool("DEBUG", False)
PORTAL_PORT = env_int("PORTAL_PORT", 8000, minimum=1)
PORTAL_BASE_URL = (env_str("PORTAL_BASE_URL") or f"http://127.0.0.1:{PORTAL_PORT}").rstrip("/")
_base = urlsplit(PORTAL_BASE_URL)
if _base.scheme not in ("http", "https") or not _base.hostname:
    raise ConfigurationError(
        f"PORTAL_BASE_URL must be an http:// or https:// address, got {PORTAL_BASE_URL!r}"
    )
# Served over TLS (directly or behind a proxy that terminates it): turns on HSTS, secure cookies
# and the redirect to https below.
PORTAL_HTTPS = _base.scheme == "https"
# The public address's own host is always allowed, so a deployment sets PORTAL_BASE_URL once.
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    list(dict.fromkeys(["127.0.0.1", "localhost", "[::1]", "testserver", _base.hostname])),
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PORTAL_BASE_URL])


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# Fernet keys for identity values and store credentials at rest. Several keys, comma separated,
# allow rotation: the first encrypts, all decrypt.
PORTAL_ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEYS", []) or [
    _persistent_secret("encryption_key", _fernet_key)
]


# Keyed hashes (masking strategy "hash", the suppression ledger, repeat-request detection).
PORTAL_HASH_KEY = env_str("PORTAL_HASH_KEY") or SECRET_KEY

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "csp",
    # Staff two-factor sign-in (PORTAL_STAFF_2FA): authenticator apps and recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "requests.apps.RequestsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "requests.limits.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # `request.user.is_verified()`: whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    # Console and admin pages need that second factor when PORTAL_STAFF_2FA asks for it.
    "requests.views.two_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A lost database connection answers 503 with Retry-After instead of 500.
    "requests.views.unavailable.DatabaseUnavailableMiddleware",
    # Refuses sign-in (console and admin) after repeated wrong passwords; last, as axes asks.
    "axes.middleware.AxesMiddleware",
]

# Content Security Policy on every response (pages, staff console, admin, API). Only the
# portal's own static files may run or style anything: no inline script, no inline style unless
# a view allows its hash (the erasure certificate, a self-contained page) or it carries the
# response's nonce; no framing, no plugins, no posting forms elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "requests.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
        }
    }
else:
    # Rate limits must hold across web workers, so the embedded default is the database.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
        }
    }

# Staff sign-in (console and admin): django-axes refuses an account after
# PORTAL_LOGIN_FAILURE_LIMIT wrong passwords, for PORTAL_LOGIN_COOLOFF_MINUTES. Counted per
# username from any address (spreading guesses over addresses does not help) and per client
# address over any usernames (one address cannot try a password on every account).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PORTAL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Refused tries during a lockout do not extend it, so nobody can keep an account locked for good
# by trying again every few minutes.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "requests.views.staff_login.login_client_ip"
AXES_CLIENT_STR_CALLABLE = "requests.views.staff_login.login_client_description"
AXES_LOCKOUT_CALLABLE = "requests.views.staff_login.login_locked_out"
AXES_DISABLE_ACCESS_LOG = True  # no table of every successful sign-in with its address
AXES_VERBOSE = False
# A wrong second-factor code counts as a failed sign-in too (requests/views/two_factor.py); the
# code typed is never kept in axes' records.
AXES_SENSITIVE_PARAMETERS = ["code"]

# Staff two-factor sign-in: `required` (every staff member enrols an authenticator after their
# password and gives a code at each sign-in), `optional` (only who enrolled gives a code) or
# `off`. Production (an https PORTAL_BASE_URL with DEBUG off) requires it unless told otherwise;
# the demo and the tests have it off. API tokens are not affected.
PORTAL_STAFF_2FA = env_choice(
    "PORTAL_STAFF_2FA",
    "required" if PORTAL_HTTPS and not DEBUG else "off",
    ("required", "optional", "off"),
)
# django-otp: wrong codes wait 1, 2, 4, 8... seconds (per device) before another is checked.
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "requests" / "locale"]
TIME_ZONE = env_str("PORTAL_TIME_ZONE", "UTC")
USE_I18N = True
# One date format per language (portal/formats/<language>/formats.py), used everywhere.
FORMAT_MODULE_PATH = ["portal.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Access packages and their parts (`requests.storage`): PORTAL_DATA_DIR on this machine, or with
# PORTAL_S3_BUCKET an S3-compatible bucket that web and workers on several machines share. Keys
# left unset are found the way boto3 finds them (AWS_* variables, an instance role).
PORTAL_S3_BUCKET = env_str("PORTAL_S3_BUCKET", "")
if PORTAL_S3_BUCKET:
    _packages_storage = {
        "BACKEND": "requests.storage.PortalS3Storage",
        "OPTIONS": {
            "bucket_name": PORTAL_S3_BUCKET,
            "location": (env_str("PORTAL_S3_PREFIX", "") or "").strip("/"),
            "endpoint_url": env_str("PORTAL_S3_ENDPOINT_URL"),
            "region_name": env_str("PORTAL_S3_REGION"),
            "access_key": env_str("PORTAL_S3_ACCESS_KEY_ID"),
            "secret_key": env_str("PORTAL_S3_SECRET_ACCESS_KEY"),
            "addressing_style": env_choice(
                "PORTAL_S3_ADDRESSING_STYLE", "auto", ("auto", "path", "virtual")
            ),
        },
    }
else:
    _packages_storage = {"BACKEND": "requests.storage.PortalFileSystemStorage"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "packages": _packages_storage,
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "staff-login"
LOGIN_REDIRECT_URL = "staff-queue"
LOGOUT_REDIRECT_URL = "staff-login"

# Mail: SMTP when EMAIL_HOST is set. Otherwise the demo keeps mail (encrypted) in the database for
# staff to read on the console's Mail page: messages hold codes and addresses, never for a log.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "privacy@localhost")
EMAIL_BACKEND = (
    # Django's SMTP backend, plus SMTPUTF8 for internationalised addresses.
    "requests.mail_smtp.EmailBackend" if EMAIL_HOST else "requests.mailbox.DatabaseEmailBackend"
)
if not EMAIL_HOST:
    EMAIL_HOST = "localhost"

# The request lifecycle.
PORTAL_VERIFICATION_TTL = timedelta(hours=env_int("PORTAL_VERIFICATION_TTL_HOURS", 48, minimum=1))
PORTAL_VERIFICATION_MAX_ATTEMPTS = env_int("PORTAL_VERIFICATION_MAX_ATTEMPTS", 5, minimum=1)
PORTAL_RESEND_INTERVAL = timedelta(seconds=env_int("PORTAL_RESEND_INTERVAL_SECONDS", 60, minimum=0))
PORTAL_RESEND_MAX = env_int("PORTAL_RESEND_MAX", 5, minimum=1)
# Verification emails are owed in the database until the mail server took them: a send task
# holds one for PORTAL_MAIL_SEND_LEASE_SECONDS, and one still owed
# PORTAL_VERIFICATION_RESEND_AFTER_SECONDS after its send was queued is queued again by the
# reconciler (every PORTAL_VERIFICATION_RECONCILE_SECONDS, at most a batch at a time).
PORTAL_MAIL_SEND_LEASE = timedelta(seconds=env_int("PORTAL_MAIL_SEND_LEASE_SECONDS", 90, minimum=1))
PORTAL_VERIFICATION_RESEND_AFTER = timedelta(
    seconds=env_int("PORTAL_VERIFICATION_RESEND_AFTER_SECONDS", 120, minimum=1)
)
PORTAL_VERIFICATION_RECONCILE_SECONDS = env_int(
    "PORTAL_VERIFICATION_RECONCILE_SECONDS", 30, minimum=1
)
# A filing's email is sent by a batch task queued at most once per this many milliseconds by all
# processes together, with every other email owed by then (0: a task per email, at once).
PORTAL_VERIFICATION_SEND_DELAY = env_int("PORTAL_VERIFICATION_SEND_DELAY_MS", 500, minimum=0) / 1000
PORTAL_VERIFICATION_RECONCILE_BATCH = env_int("PORTAL_VERIFICATION_RECONCILE_BATCH", 200, minimum=1)
PORTAL_UNVERIFIED_EXPIRY = timedelta(days=env_int("PORTAL_UNVERIFIED_EXPIRY_DAYS", 14, minimum=1))
# Closed requests keep the person's identity (encrypted) this long, for questions and complaints
# about the answer; then it is purged and only the request's proof without personal data stays.
PORTAL_CLOSED_RETENTION = timedelta(days=env_int("PORTAL_CLOSED_RETENTION_DAYS", 365, minimum=1))
PORTAL_CLOCK_START = env_choice("PORTAL_CLOCK_START", "receipt", ("receipt", "verification"))
PORTAL_DUE_SOON_DAYS = env_int("PORTAL_DUE_SOON_DAYS", 7, minimum=0)
PORTAL_ORGANISATION_NAME = env_str("PORTAL_ORGANISATION_NAME", "Example Organisation")
# The name authenticator apps show next to the staff member's code.
OTP_TOTP_ISSUER = PORTAL_ORGANISATION_NAME
PORTAL_SUPERVISORY_AUTHORITY = env_str(
    "PORTAL_SUPERVISORY_AUTHORITY", "your national data protection authority"
)
# Where people write for the rights the portal does not take (rectification, restriction,
# objection), named in the access package's report and on the status page.
PORTAL_CONTACT_EMAIL = env_str("PORTAL_CONTACT_EMAIL", DEFAULT_FROM_EMAIL)
PORTAL_DEFAULT_PHONE_REGION = (env_str("PORTAL_DEFAULT_PHONE_REGION") or "").upper() or None
if PORTAL_DEFAULT_PHONE_REGION and PORTAL_DEFAULT_PHONE_REGION not in SUPPORTED_REGIONS:
    # A typo here would silently refuse every national number, or read them in no country.
    raise ConfigurationError(
        f"PORTAL_DEFAULT_PHONE_REGION={PORTAL_DEFAULT_PHONE_REGION!r} is not a region known for "
        "phone numbers; use an ISO 3166 alpha-2 code such as FR, GB or DE."
    )
# Text messages carrying a phone's verification code (requests.sms): the organisation's SMS
# gateway over a signed webhook, or the demo's console sender (kept for the staff Mail page).
PORTAL_SMS_WEBHOOK_URL = env_str("PORTAL_SMS_WEBHOOK_URL", "")
PORTAL_SMS_WEBHOOK_SECRET = env_str("PORTAL_SMS_WEBHOOK_SECRET", "")
PORTAL_SMS_SENDER = env_choice(
    "PORTAL_SMS_SENDER", "webhook" if PORTAL_SMS_WEBHOOK_URL else "console", ("console", "webhook")
)
if PORTAL_SMS_SENDER == "webhook" and not (PORTAL_SMS_WEBHOOK_URL and PORTAL_SMS_WEBHOOK_SECRET):
    raise ConfigurationError(
        "PORTAL_SMS_SENDER=webhook needs PORTAL_SMS_WEBHOOK_URL and PORTAL_SMS_WEBHOOK_SECRET."
    )

# Connected stores.
PORTAL_STORE_TIMEOUT = env_int("PORTAL_STORE_TIMEOUT", 10, minimum=1)
# Jobs: a worker's claim on a job lasts this long and is renewed between batches; a job whose
# lease ran out (its worker died) is taken up again by the reconciler.
PORTAL_JOB_LEASE = timedelta(seconds=env_int("PORTAL_JOB_LEASE_SECONDS", 120, minimum=1))
PORTAL_JOB_MAX_ATTEMPTS = env_int("PORTAL_JOB_MAX_ATTEMPTS", 6, minimum=1)
PORTAL_JOB_RETRY_BASE = env_int("PORTAL_JOB_RETRY_BASE_SECONDS", 5, minimum=0)
PORTAL_JOB_RETRY_MAX = env_int("PORTAL_JOB_RETRY_MAX_SECONDS", 600, minimum=0)
PORTAL_JOB_REQUEUE_AFTER = timedelta(
    seconds=env_int("PORTAL_JOB_REQUEUE_AFTER_SECONDS", 60, minimum=1)
)
PORTAL_RECONCILE_SECONDS = env_int("PORTAL_RECONCILE_SECONDS", 30, minimum=1)
# Audit events are sealed into the chain by a task queued after their transaction commits, which
# runs this many seconds later and seals every event committed meanwhile in one batch (0: the
# committing process seals at once, itself). It is most of the time an event stays unsealed.
PORTAL_AUDIT_SEAL_DELAY = env_int("PORTAL_AUDIT_SEAL_DELAY", 1, minimum=0)
# This sweep seals the events whose sealing task was lost (a process that died after its commit),
# so it bounds how long an event can stay unsealed.
PORTAL_AUDIT_SEAL_SECONDS = env_int("PORTAL_AUDIT_SEAL_SECONDS", 60, minimum=1)
# Kinds approved as soon as the person verifies (e.g. "access"); empty: staff review everything.
# A request flagged possibly excessive, or with identifiers staff must still confirm, is reviewed.
PORTAL_AUTO_APPROVE = env_list("PORTAL_AUTO_APPROVE", [])
_unknown_kinds = sorted(set(PORTAL_AUTO_APPROVE) - {"access", "erasure"})
if _unknown_kinds:
    raise ConfigurationError(
        "PORTAL_AUTO_APPROVE takes request kinds (access, erasure); got "
        + ", ".join(_unknown_kinds)
    )
# Whether DPOs get the daily digest at all.
PORTAL_DIGEST_ENABLED = env_bool("PORTAL_DIGEST_ENABLED", True)
# The hour (0-23, PORTAL_TIME_ZONE) at which DPOs get the daily digest of overdue requests.
PORTAL_DIGEST_HOUR = env_int("PORTAL_DIGEST_HOUR", 7, minimum=0)
if PORTAL_DIGEST_HOUR > 23:
    raise ConfigurationError(
        f"PORTAL_DIGEST_HOUR must be an hour from 0 to 23, got {PORTAL_DIGEST_HOUR}"
    )
# Erasure recipients (Art. 19): a manual store's task is due this many days after it is handed
# to staff (0: the request's own due date; never later than it), and downstream services still
# erasing are asked how they stand this often.
PORTAL_MANUAL_TASK_DAYS = env_int("PORTAL_MANUAL_TASK_DAYS", 7, minimum=0)
PORTAL_RECIPIENT_CHECK_SECONDS = env_int("PORTAL_RECIPIENT_CHECK_SECONDS", 60, minimum=1)
# Webhook stores on private, loopback or link-local addresses are refused unless this is set;
# no store can ask for an exception of its own.
PORTAL_WEBHOOK_ALLOW_PRIVATE = env_bool("PORTAL_WEBHOOK_ALLOW_PRIVATE", False)
# Files stores may only have their root inside these folders (links and `..` resolved), so that
# a store's URL cannot point the portal at /etc or its own data. `none` allows no files store.
PORTAL_FILES_ROOTS = [
    root for root in env_list("PORTAL_FILES_ROOTS", [str(DATA_DIR / "files")]) if root != "none"
]
for _root in PORTAL_FILES_ROOTS:
    if not Path(_root).is_absolute():
        raise ConfigurationError(f"PORTAL_FILES_ROOTS must list absolute folders, got {_root!r}")
# Store maps longer than this are refused (413) before they are parsed.
PORTAL_MAP_MAX_BYTES = env_int("PORTAL_MAP_MAX_BYTES", 1_000_000, minimum=1024)

# Access packages: kept for the person to download, then deleted; each download needs a fresh
# single-use code emailed to the verified address.
PORTAL_PACKAGE_TTL = timedelta(days=env_int("PORTAL_PACKAGE_TTL_DAYS", 7, minimum=1))
# Encrypt each access package at rest with PORTAL_ENCRYPTION_KEYS once it is built (downloads
# decrypt it as they stream). Off, the ZIP is stored as is (0600) until PORTAL_PACKAGE_TTL_DAYS.
PORTAL_PACKAGE_ENCRYPTION = env_bool("PORTAL_PACKAGE_ENCRYPTION", False)
PORTAL_DOWNLOAD_CODE_TTL = timedelta(
    minutes=env_int("PORTAL_DOWNLOAD_CODE_TTL_MINUTES", 15, minimum=1)
)
PORTAL_DOWNLOAD_CODE_MAX_ATTEMPTS = env_int("PORTAL_DOWNLOAD_CODE_MAX_ATTEMPTS", 5, minimum=1)
# With at most 10 codes of 5 attempts each, a package takes 50 guesses at 6 digits over its life.
PORTAL_DOWNLOAD_CODES_PER_PACKAGE = env_int("PORTAL_DOWNLOAD_CODES_PER_PACKAGE", 10, minimum=1)
# Staff see a request flagged as possibly excessive (Art. 12(5)) when it is at least the Nth
# request of its kind by the same person within twelve months. Never refused automatically.
PORTAL_EXCESSIVE_REQUESTS_PER_YEAR = env_int("PORTAL_EXCESSIVE_REQUESTS_PER_YEAR", 4, minimum=2)

# Request bodies: the largest accepted, by kind of endpoint, and how deeply JSON may nest.
# Larger bodies answer 413, deeper JSON 400, both naming the setting (requests/limits.py).
PORTAL_MAX_BODY_BYTES = env_int("PORTAL_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
PORTAL_STAFF_MAX_BODY_BYTES = env_int("PORTAL_STAFF_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
PORTAL_MAX_JSON_DEPTH = env_int("PORTAL_MAX_JSON_DEPTH", 32, minimum=2)
# Django's own cap on buffered bodies stays above ours, so ours is the one people meet (a map's
# endpoints take twice PORTAL_MAP_MAX_BYTES: requests/limits.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(
    PORTAL_MAX_BODY_BYTES, PORTAL_STAFF_MAX_BODY_BYTES, 2 * PORTAL_MAP_MAX_BYTES
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "requests.api.authentication.HashedTokenAuthentication",
        "requests.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["requests.api.permissions.StaffAccess"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "requests.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "requests.api.schema.PortalAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "requests.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "requests.limits.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

# Rate limits (requests/api/throttling.py), counted in the cache: per client address, per
# identity (a keyed hash of the email or phone) and per request reference.
PORTAL_RATE_LIMITS = {
    "file_per_address": env_rate("PORTAL_THROTTLE_FILE", "20/hour"),
    "file_per_identity": env_rate("PORTAL_THROTTLE_FILE_IDENTITY", "5/hour"),
    "verify_per_address": env_rate("PORTAL_THROTTLE_VERIFY", "60/hour"),
    "verify_per_reference": env_rate("PORTAL_THROTTLE_VERIFY_REFERENCE", "30/hour"),
}
# The proxies in front of the portal: a count, or their networks. Unset: X-Forwarded-For is
# ignored and the client is the connection's address.
PORTAL_TRUSTED_PROXIES = env_trusted_proxies("PORTAL_TRUSTED_PROXIES")
SPECTACULAR_SETTINGS = {
    "TITLE": "Data subject rights portal API",
    "DESCRIPTION": "File and verify access and erasure requests; review and run them as staff.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RejectionReasonEnum": "requests.states.RejectionReason",
        "RequestKindEnum": "requests.states.Kind",
        "RequestStatusEnum": "requests.states.Status",
        "StoreKindEnum": "requests.models.stores.StoreKind",
    },
}

# Celery. The database is the source of truth for every job; the broker only carries ids.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast (control) messages; Celery's default is a folder in the working directory.
        "control_folder": str(_broker_dir / "control"),
        # The worker looks for new message files this often, and also waits this long whenever
        # its prefetch is full: kombu's default of a second limited mail to about 2 a second.
        "polling_interval": env_int("PORTAL_BROKER_POLL_MS", 50, minimum=1) / 1000,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # A task not acknowledged within this time is delivered again; it must exceed the longest job.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# The queue of tasks not bound to a store's own site queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("PORTAL_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task at a time per process on server brokers, so a long store job never holds others back
# from another worker. The filesystem broker has one worker on one machine, and each fetch may
# wait a polling interval, so it takes several at a time.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int(
    "PORTAL_WORKER_PREFETCH", 8 if CELERY_BROKER_URL == "filesystem://" else 1, minimum=1
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("PORTAL_TASK_SOFT_TIME_LIMIT", 1800, minimum=1)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connections around every task; this many tasks apart
# instead. Between those, `portal/celery.py` keeps a connection for its CONN_MAX_AGE like a web
# request does, checked before reuse.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE  # beat's hours (the digest's) are the portal's local hours
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {
        "task": "requests.tasks.jobs_reconcile",
        "schedule": timedelta(seconds=PORTAL_RECONCILE_SECONDS),
    },
    "audit-seal-pending": {
        "task": "requests.tasks.audit_seal_pending",
        "schedule": timedelta(seconds=PORTAL_AUDIT_SEAL_SECONDS),
    },
    "reconcile-verification-emails": {
        "task": "requests.tasks.verifications_reconcile",
        "schedule": timedelta(seconds=PORTAL_VERIFICATION_RECONCILE_SECONDS),
    },
    "expire-unverified-requests": {
        "task": "requests.tasks.requests_expire_unverified",
        "schedule": timedelta(minutes=env_int("PORTAL_EXPIRY_SWEEP_MINUTES", 15, minimum=1)),
    },
    "check-erasure-recipients": {
        "task": "requests.tasks.erasure_recipients_check",
        "schedule": timedelta(seconds=PORTAL_RECIPIENT_CHECK_SECONDS),
    },
    "purge-closed-identities": {
        "task": "requests.tasks.requests_purge_closed_identities",
        "schedule": timedelta(hours=1),
    },
    "delete-expired-packages": {
        "task": "requests.tasks.packages_delete_expired",
        "schedule": timedelta(minutes=env_int("PORTAL_PACKAGE_SWEEP_MINUTES", 15, minimum=1)),
    },
    # The DPOs' daily digest, at this hour of PORTAL_TIME_ZONE.
    "staff-digest": {
        "task": "requests.tasks.staff_digest_send",
        "schedule": crontab(hour=PORTAL_DIGEST_HOUR, minute=0),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Django logs the path of every 404 and 5xx; a status link's token must not reach the log.
    "filters": {"redact_secret_paths": {"()": "portal.redaction.RedactSecretPaths"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secret_paths"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request's full URL at INFO; a webhook URL may carry a token.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Production is an https PORTAL_BASE_URL with DEBUG off (README, "Running in production"):
# `manage.py check --deploy` is then clean.
if PORTAL_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PORTAL_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("PORTAL_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole registrable domain to https in browsers for good, and the
        # preload list accepts any domain that sends the flag: that is the operator's decision,
        # not a default, so check --deploy's reminder about it is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_SSL_REDIRECT = env_bool("PORTAL_SSL_REDIRECT", True)
    # Load balancers probe the health view over plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    # The TLS-terminating proxy in front tells Django the original scheme in this header; it must
    # overwrite whatever the client sent. `none` when clients reach the portal directly.
    _proto_header = env_str("PORTAL_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    if _proto_header and _proto_header.lower() not in {"none", "off"}:
        SECURE_PROXY_SSL_HEADER = (
            "HTTP_" + _proto_header.upper().replace("-", "_"),
            "https",
        )
