"""``make fuzz`` against the running API (uvicorn on loopback, schemathesis from its own
/openapi.json): every operation, valid and invalid inputs, with a key of each scope and with none.
No response is a 5xx, and every response matches the schema the API documents for it (status code
and body). The quick admin-only run inside ``make test`` is tests/integration/api/test_schemathesis.py."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.api import private_settings, seed
from tests.support.api_server import serving
from tests.support.figures import needs_full, record_figure

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install '.[dev]')"
)

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.integration, needs_full]
EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "40"))
SKIP = {"/v1/density/stream", "/v1/alerts/stream"}  # endless responses
KEYS = ("none", "density", "traffic", "admin")


@pytest.fixture(scope="module")
def target(migrated: Settings) -> Iterator[tuple[Any, dict[str, str]]]:
    cfg = private_settings(migrated, "apif", api_key_cache_s=60.0, rate_limit_per_min=1_000_000)
    data = seed(cfg)
    with serving(create_app(cfg)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json"), data["tokens"]
    drop_database(cfg)


def first_line(exc: BaseException) -> str:
    """The gist of a schemathesis failure (its group's first sub-exception, first two lines)."""
    inner = getattr(exc, "exceptions", None)
    text = str(inner[0] if inner else exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:4] if line.strip())


@pytest.mark.parametrize("key", KEYS)
def test_no_5xx_and_every_response_matches_its_schema(target: tuple[Any, dict[str, str]], key: str) -> None:
    schema, tokens = target
    headers = {"Authorization": f"Bearer {tokens[key]}"} if key != "none" else {}
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    checked = 0
    for result, mode in product(
        schema.get_all_operations(), (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ):
        operation = result.ok()
        if operation.path in SKIP:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(
                response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
                headers=headers,
            )  # fmt: skip

        try:
            run()
        except Unsatisfiable:
            continue  # no invalid input exists (an operation without parameters)
        except (Exception, BaseExceptionGroup) as exc:  # gather every operation's failure, then report all
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.name}): {first_line(exc)}")
        checked += 1
    record_figure("fuzz_api", f"requests with key '{key}'", sum(statuses.values()), "requests")
    record_figure(
        "fuzz_api", f"statuses with key '{key}'", str(dict(sorted(statuses.items()))), "count by code"
    )
    assert not failures, "\n".join(failures)
    assert checked >= 8
    assert not any(code >= 500 for code in statuses), statuses
    if key == "none":
        # Some parameters are checked before the key (400/422); only the open probes answer 200.
        assert set(statuses) <= {200, 400, 401, 404, 405, 422}, statuses
    else:
        assert statuses[200] > 0, statuses  # the fuzzer got past validation, not only refusals
