"""Typed helpers that read settings from the environment and fail loudly on bad values.

Every secret may also come from a file named by the `<NAME>_FILE` variable, so that container
secrets and systemd credentials work without putting the secret itself in the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class ConfigurationError(RuntimeError):
    """A setting in the environment is malformed; the message names the variable."""


def env_str(name: str, default: str | None = None) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env_str(name, default)
    assert raw is not None
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return raw


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "mariadb": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
}


def database_from_url(url: str, *, variable: str = "DATABASE_URL") -> dict:
    """Turn `postgresql://user:pass@host:port/name?opt=v` or `sqlite:///path` into Django's dict."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    engine = _ENGINES.get(scheme)
    if engine is None:
        raise ConfigurationError(
            f"{variable} has an unsupported scheme {parts.scheme!r}; use postgresql://, "
            "mysql:// or sqlite:///"
        )
    if scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///relative.db -> "/relative.db"; sqlite:////abs.db -> "//abs.db"
        name = path[1:] if path.startswith("//") else (path.lstrip("/") or ":memory:")
        # Write-ahead logging: readers never wait for the writer, and a commit is one append to
        # the log synced at checkpoints (an application crash loses nothing; a power cut may lose
        # the last commits, never consistency). Without it every commit syncs the disk several
        # times, and a worker sent about 15 emails a second.
        options = {
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        return {"ENGINE": engine, "NAME": name, "OPTIONS": options}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ConfigurationError(f"{variable} must name a database after the host")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


_RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate such as `20/hour` (second, minute, hour, day) as (count, seconds)."""
    raw = env_str(name, default)
    assert raw is not None
    count, _, period = raw.strip().partition("/")
    seconds = _RATE_PERIODS.get(period.strip().lower().rstrip("s"))
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ConfigurationError(
            f"{name} must be a rate like 20/hour (per second, minute, hour or day); got {raw!r}"
        )
    return int(count), seconds


def env_trusted_proxies(name: str) -> int | tuple:
    """How many proxies stand before the portal (a count), or the networks they live in.

    Empty or unset: none, so X-Forwarded-For is never believed.
    """
    import ipaddress

    raw = (env_str(name) or "").strip()
    if not raw:
        return 0
    if raw.isdigit():
        return int(raw)
    networks = []
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{name} must be a number of proxies or comma-separated networks such as "
                f"10.0.0.0/8; {item.strip()!r} is neither"
            ) from None
    return tuple(networks)


# `make run` records here the data folder it used, so that a later `manage.py` command without
# PORTAL_DATA_DIR opens the same database and keys instead of making a second, empty folder.
RUN_FILE_VARIABLE = "PORTAL_RUN_FILE"
RUN_FILE_NAME = ".portal-run.env"


def run_file(base_dir: Path) -> Path:
    return Path(os.environ.get(RUN_FILE_VARIABLE) or base_dir / RUN_FILE_NAME)


def run_file_write(base_dir: Path, data_dir: Path) -> Path:
    path = run_file(base_dir)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(
        "# Written by `make run`: the data folder it used, read by manage.py when\n"
        "# PORTAL_DATA_DIR is not set. Delete this file to forget it.\n"
        f"PORTAL_DATA_DIR={data_dir}\n"
    )
    staged.replace(path)
    return path


def data_dir_setting(base_dir: Path) -> Path:
    """PORTAL_DATA_DIR; else the folder `make run` last used; else `var` in the project."""
    explicit = env_str("PORTAL_DATA_DIR")
    if explicit:
        return Path(explicit).resolve()
    path = run_file(base_dir)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return (base_dir / "var").resolve()
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be read ({exc}); set PORTAL_DATA_DIR") from exc
    remembered = next(
        (line.split("=", 1)[1].strip() for line in lines if line.startswith("PORTAL_DATA_DIR=")),
        "",
    )
    if not remembered or not Path(remembered).is_absolute():
        raise ConfigurationError(
            f"{path} does not name an absolute PORTAL_DATA_DIR; set PORTAL_DATA_DIR, or delete "
            "the file"
        )
    if not Path(remembered).is_dir():
        # Making it afresh would start an empty database with new keys, which cannot read
        # anything the portal encrypted before: refuse, and say which variable to set.
        raise ConfigurationError(
            f"PORTAL_DATA_DIR is not set and the data folder `make run` last used, "
            f"{remembered} (recorded in {path}), no longer exists. Set PORTAL_DATA_DIR to the "
            "data folder to use, or delete that file to start afresh in ./var"
        )
    return Path(remembered)
