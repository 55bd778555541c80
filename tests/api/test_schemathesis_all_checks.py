"""The schema and the server agree: schemathesis with every check it has, on every operation.

Beside test_schemathesis.py (a few checks, generation steered to captions the model knows), this run leaves the
data to schemathesis and keeps every check: valid data accepted, invalid data rejected, status codes, content
types and response schemas conform, no server error, the unsupported methods refused. Its phases are the
examples, the coverage phase (each constraint at and beyond its bound) and a bounded fuzz, deterministic.
"""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (  # its defaults, widened below where the contract says so
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from app.main import create_app
from app.web.errors import CROSS_FIELD_RULES
from tests.helpers.models import model_settings

pytestmark = pytest.mark.slow  # 30 to 90 s on two shared cores: most of it the coverage phase's 2,000 cases

# Small caps: the schema states them, so every request the fuzzer calls valid costs the tiny model milliseconds.
MAX_STEPS, MAX_BATCH = 3, 2
FUZZ_EXAMPLES = 12  # per operation, beyond the examples and the coverage phase's cases
VALIDATE = "/api/v1/generate/validate"  # answers a request it would refuse with 200 {valid: false, errors}


def bad_fields_response(document: dict, method: str, path: str) -> tuple[str, dict[str, str]]:
    """The status an operation answers bad fields with (422; a 400 in OpenAI's API) and the rules that response
    states the schema cannot (error type -> rule)."""
    responses = document["paths"][path][method.lower()]["responses"]
    for status in ("422", "400"):
        if CROSS_FIELD_RULES in responses.get(status, {}):
            return status, responses[status][CROSS_FIELD_RULES]
    return "422", {}


def stated_rules(document: dict, method: str, path: str) -> dict[str, str]:
    return bad_fields_response(document, method, path)[1]


def broken_rules(body: dict) -> set[str]:
    """The error types a refusal names: each field error's (ours, A1111's), or the error object's code (OpenAI's)."""
    if isinstance(body.get("error"), dict):
        return {body["error"]["code"]}
    return {error["type"] for error in body["detail"]}


def config(document: dict) -> SchemathesisConfig:
    """Every check on, deterministic; on an operation whose 422 states rules the schema cannot (a prompt's
    grammar, a patch that must divide the grid), a 422 to schema-valid data is in the contract, and schemathesis's
    own way to say so is that operation's expected statuses (`st explain ST202`). Which 422 is allowed is then
    held exactly by only_stated_rules(). The check answers invalid data with a 200 that lists the errors (that
    they are the stream's 422 items is held by tests/api/test_stream_api.py)."""
    check = {"include-name": f"GET {VALIDATE}", "checks": {"negative_data_rejection": {
        "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "200"]}}}
    operations = [check] + [{"include-name": f"{method.upper()} {path}",
                   "checks": {"positive_data_acceptance": {
                       "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
                                             bad_fields_response(document, method, path)[0]]}}}
                  for path, methods in document["paths"].items() for method in methods
                  if stated_rules(document, method, path)]
    return SchemathesisConfig.from_dict({"generation": {"deterministic": True}, "operations": operations})


@pytest.fixture(scope="module")
def fuzzed_schema(tiny_model_dir):
    """The schema of the app serving the tiny model, read after its lifespan loaded the models (so it states the
    video model's frames), with the config above."""
    app = create_app(model_settings(tiny_model_dir, max_steps=MAX_STEPS, max_batch=MAX_BATCH, request_timeout_s=30))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config(schema.raw_schema))
    yield schema
    shutdown_lifespans()


def only_stated_rules(ctx, response, case) -> None:
    """A 422 (OpenAI's API: a 400) to data the schema calls valid names only rules that the operation's response for
    bad fields states."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    status, stated = bad_fields_response(case.operation.schema.raw_schema, case.method, case.path)
    if response.status_code != int(status):
        return
    broken = broken_rules(json.loads(response.content))
    assert broken <= set(stated), f"schema-valid data refused by rules the {status} does not state: " \
                                  f"{broken - set(stated)}"


@pytest.fixture(autouse=True)
def _node_id(request):
    """schemathesis 4.32's lazy parametrization reads (and, to name each operation, rewrites) the test node's
    `_nodeid`, an attribute pytest 9.2 no longer has: it is given the node's id."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("fuzzed_schema")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_the_server_takes_what_the_schema_says_and_nothing_else(case):
    case.call_and_validate(additional_checks=[only_stated_rules])
