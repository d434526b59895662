"""gunicorn's configuration for the portal: `gunicorn -c python:portal.gunicorn_conf ...`.

The access log is the one place every URL passes through, including people's private status
links, so it is written by a logger that keeps only what operations need: the client address,
time, method, the path with its tokens replaced and without its query string, the status, size
and duration. Request and response headers (Referer, Cookie, Authorization) are never logged.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from portal.redaction import redact_path, redact_url

access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'

# Atoms that never carry a secret; every other atom (headers, environ, raw URI) is dropped.
_SAFE_ATOMS = ("h", "l", "u", "t", "s", "m", "H", "b", "B", "a", "T", "D", "M", "L", "p")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        full = super().atoms(resp, req, environ, request_time)
        atoms = {name: full[name] for name in _SAFE_ATOMS if name in full}
        path = redact_path(environ.get("PATH_INFO"))
        atoms["U"] = path
        atoms["q"] = "-"
        atoms["r"] = f"{full.get('m') or '-'} {path} {full.get('H') or '-'}"
        atoms["f"] = redact_url(environ.get("HTTP_REFERER"))
        return atoms


logger_class = RedactingLogger
