"""Property-based API tests from the app's own OpenAPI schema: no 500s, and every answer matches its schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.helpers.models import model_settings, settings_for_tests

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_STEPS, MAX_BATCH = 20, 2  # the app's caps: a request at the caps costs the tiny model a few milliseconds
CAPTIONS = ("a red circle", "a large blue square at the top left", "a small green triangle")
# The operations, listed from an app without a model (no lifespan runs to read the schema).
OPERATIONS = [r.ok().label for r in
              schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_for_tests())).get_all_operations()]


@pytest.fixture(scope="module")
def operations(tiny_model_dir):
    """The operations of an app serving the tiny random model, caps small so generation is cheap."""
    app = create_app(model_settings(tiny_model_dir, max_steps=MAX_STEPS, max_batch=MAX_BATCH, request_timeout_s=20))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    shutdown_lifespans()  # schemathesis started the app's lifespan on its first call: stop its sampler


def test_the_schema_lists_the_generation_and_instrument_operations():
    assert {"POST /api/v1/generate", "GET /api/v1/generate/stream", "GET /api/v1/instruments/denoising",
            "GET /api/v1/model", "POST /v1/images/generations", "POST /sdapi/v1/txt2img"} <= set(OPERATIONS)


def plausible(drawn):
    """Half the generation cases get a caption the model knows and steps and batch within the caps.

    Random text is almost never a caption of the scene grammar, so without this every generation case is a 422
    and the sampling paths (and their response schemas) would go untested.
    """
    case, caption, steer = drawn
    fields = case.query if case.method == "GET" else case.body
    if steer and isinstance(fields, dict) and ("prompt" in fields or case.method == "POST"):
        fields["prompt"] = caption
        fields.pop("negative_prompt", None)
        for key, cap in (("steps", 6), ("batch_size", MAX_BATCH), ("n", MAX_BATCH), ("n_iter", 1)):
            if isinstance(fields.get(key), int):
                fields[key] = min(max(fields[key], 1), cap)
        for key in ("width", "height", "size"):  # the dialects': absent is the model's one size
            fields.pop(key, None)
    return case


@pytest.mark.parametrize("label", OPERATIONS)
def test_the_operation_conforms_to_its_schema(operations, label):
    cases = st.tuples(operations[label].as_strategy(), st.sampled_from(CAPTIONS), st.booleans()).map(plausible)

    @given(case=cases)
    @settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(checks=CHECKS)

    check()


@pytest.mark.parametrize("query", [
    "compression?height=100",  # the default f = 8 does not divide 100
    "coherence?latent_height=171",  # the default p_h = 2 does not divide 171
    "coherence?latent_width=9",
    "denoising?beta_start=0.1",  # above the default beta_end = 0.08
])
def test_a_default_that_conflicts_with_a_given_value_is_a_422_not_a_500(client, query):
    """Found by schemathesis: a field validator did not run on a default, so the domain code raised."""
    response = client.get(f"/api/v1/instruments/{query}")
    assert response.status_code == 422
