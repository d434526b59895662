"""Test settings: the portal's own settings with a throwaway data directory and a real database.

The portal's database is PostgreSQL when one answers (and always in CI), else the embedded SQLite.
Celery runs tasks inline unless a test starts a real worker.
"""

import os
import tempfile

os.environ.setdefault("PORTAL_DATA_DIR", tempfile.mkdtemp(prefix="portal-test-"))
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")

from tests.servers import postgres_url_for_portal

_pg = postgres_url_for_portal()
if _pg and not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = _pg

from portal.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Tests file many requests from one client and for one person; a test of a limit lowers it.
PORTAL_RATE_LIMITS = dict.fromkeys(PORTAL_RATE_LIMITS, (10000, 60))  # noqa: F405
# Staff sign in with a password only unless a test turns two-factor sign-in on.
PORTAL_STAFF_2FA = "off"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Several test runs may share one PostgreSQL server (developers, CI, parallel sessions): give
# each run its own test database so they never drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_portal_{os.getpid()}"}  # noqa: F405
