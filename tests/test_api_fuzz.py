"""Schemathesis against a live portal: no 5xx, no undocumented status, no off-schema answer
(body, Content-Type or documented headers such as Retry-After), and no staff operation that
answers without the token.

gunicorn serves the portal on the test database; schemathesis runs from its own environment
(tests/fuzz/environment.py) with its working directory outside the project, generating valid
and invalid input for every public and staff operation in the served schema, a bounded number
of examples each, with a staff token.
"""

import json
import os
import re
import subprocess
import urllib.request

import pytest
from django.conf import settings as django_settings

from requests.models import ConnectedStore
from requests.services import lifecycle
from requests.services.tokens import token_create
from tests.fuzz import environment
from tests.processes import free_port, manage, portal_env, web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "ignored_auth",
    )
)
EXAMPLES_PER_OPERATION = 12
MANUAL_MAP = """
system: Payroll (paper files)
owner: payroll-lead@example.com
collections:
  payslips:
    categories: [salary]
"""
# The whole run is bounded by the examples; this only stops a run that hangs.
RUN_TIMEOUT_SECONDS = 600


def _database_url() -> str:
    database = django_settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{os.path.abspath(database['NAME'])}"
    user, host, port = database["USER"], database["HOST"], database["PORT"]
    return f"postgresql://{user}@{host}:{port}/{database['NAME']}"


def _schemathesis() -> str:
    try:
        return str(environment.ensure())
    except (OSError, subprocess.CalledProcessError) as exc:
        message = f"the schemathesis environment could not be built (PyPI needed once): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: tests may not skip)")
        pytest.skip(message)


def _seed() -> tuple[list[str], list[str]]:
    """Requests in the states the staff operations act on, and a store: real names to use."""
    waiting = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    references = [waiting.reference]
    for kind in ("access", "erasure", "access"):
        filed = lifecycle.request_file(kind=kind, identity={"email": f"{kind}@example.com"})
        lifecycle.request_mark_verified(request=filed, method="code")
        references.append(filed.reference)
    ConnectedStore.objects.create(name="payroll", kind="manual", map_yaml=MANUAL_MAP)
    return references, ["payroll"]


def _config(references: list[str], stores: list[str]) -> str:
    """Real values for some generated inputs, so examples get past "not found" and "invalid"."""
    dictionaries = {
        "references": references,
        "stores": stores,
        "emails": ["ada@example.com", "Grace.Hopper@Example.org", "o'neil+dsr@example.co.uk"],
        "phones": ["+33 6 12 34 56 78", "+14155550123"],
        "new_stores": ["crm", "shop_2", "payroll"],
    }
    bindings = {
        "path.reference": ("references", 0.7),
        "path.name": ("stores", 0.7),
        "path.store": ("stores", 0.7),
        "body.identity.email": ("emails", 0.6),
        "body.identity.phone": ("phones", 0.5),
        "body.name": ("new_stores", 0.5),
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines.append("[parameters]")
    for key, (name, probability) in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}')
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 120)
def test_schemathesis_finds_no_server_error_undocumented_status_or_schema_violation(
    staff_user, tmp_path
):
    schemathesis = _schemathesis()
    token = token_create(user=staff_user, actor="system")
    references, stores = _seed()
    (tmp_path / "schemathesis.toml").write_text(_config(references, stores))
    port = free_port()
    env = portal_env(
        DATABASE_URL=_database_url(),
        SECRET_KEY=django_settings.SECRET_KEY,
        PORTAL_ENCRYPTION_KEYS=",".join(django_settings.PORTAL_ENCRYPTION_KEYS),
        PORTAL_DATA_DIR=str(tmp_path / "web"),
        # Generous limits, so the examples reach the views behind them (429 is still allowed).
        PORTAL_THROTTLE_FILE="100000/hour",
        PORTAL_THROTTLE_FILE_IDENTITY="100000/hour",
        PORTAL_THROTTLE_VERIFY="100000/hour",
        PORTAL_THROTTLE_VERIFY_REFERENCE="100000/hour",
        PORTAL_STORE_TIMEOUT="2",
    )
    # The test database was made with the tests' in-memory cache; the server's rate limits
    # count in the database cache, as `make run` has them.
    manage("createcachetable", env=env)
    with web_server(env, tmp_path / "web.log", port):
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/schema/", timeout=30) as answer:
            assert answer.status == 200
        command = [
            schemathesis, "run", f"{base}/api/schema/",
            "--checks", CHECKS,
            "--max-examples", str(EXAMPLES_PER_OPERATION),
            "--phases", "examples,coverage,fuzzing",
            "--header", f"Authorization: Token {token}",
            "--seed", "20261129",
            "--workers", "2",
            "--request-timeout", "30",
            "--generation-database", "none",
            "--suppress-health-check", "all",
            "--no-color",
        ]  # fmt: skip
        run = subprocess.run(
            command,
            cwd=tmp_path,  # outside the project: its `requests` app must not shadow the library
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
    report = run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    tested = re.search(r"Tested: (\d+)", run.stdout)
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert tested and int(tested.group(1)) >= 20, report  # every public and staff operation
    assert cases and int(cases.group(1)) == int(cases.group(2)) >= 500, report
