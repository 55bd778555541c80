"""What every POST operation answers to a body it cannot take, as its OpenAPI document says it will; in the error
shape of its API (ours and AUTOMATIC1111's: a 422 listing the fields; OpenAI's: a 400 with the error object)."""

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.web.dialects.shapes import OPENAI_PREFIX
from app.web.errors import CROSS_FIELD_RULES
from app.web.middleware import MAX_BODY_BYTES
from app.web.openapi import JSON
from tests.helpers.models import settings_for_tests


def post_paths(client) -> list[str]:
    """The POST operations that take a body."""
    return sorted(path for path, ops in client.get("/openapi.json").json()["paths"].items()
                  if "requestBody" in ops.get("post", {}))


def bad_fields_status(path: str) -> int:
    return 400 if path.startswith(OPENAI_PREFIX) else 422


def message(response) -> str:
    """A refusal's words, in whichever shape."""
    body = response.json()
    return body["error"]["message"] if "error" in body and isinstance(body["error"], dict) else body["detail"]


def test_the_post_operations_are_found(client):
    assert {"/api/v1/generate", "/api/v1/generate/video", "/api/v1/generate/grid", "/v1/images/generations",
            "/sdapi/v1/txt2img", "/sdapi/v1/png-info"} <= set(post_paths(client))


def test_every_post_operation_declares_its_bad_fields_answer_and_the_413(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in post_paths(client):
        assert {"413", str(bad_fields_status(path))} <= set(paths[path]["post"]["responses"]), path


@pytest.mark.parametrize("body", [b'\xff\xfe{"prompt": "a red circle"}', b'{"prompt": "\xe9"}'])
def test_a_body_that_is_not_utf8_json_is_refused_naming_the_body(client, body):
    for path in post_paths(client):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == bad_fields_status(path), (path, r.text)
        if path.startswith(OPENAI_PREFIX):
            assert r.json()["error"]["code"] == "json_invalid" and r.json()["error"]["param"] is None
            continue
        [error] = r.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"][0] == "body"  # [body], or [body, offset]


def test_a_body_over_the_limit_is_a_413_whether_its_length_is_said_or_not(client):
    big = {"prompt": "a" * (MAX_BODY_BYTES + 1)}
    for path in [*post_paths(client), "/sdapi/v1/interrupt"]:  # the limit holds on a route that reads no body too
        said = client.post(path, json=big)
        assert said.status_code == 413 and str(MAX_BODY_BYTES) in message(said), path
        streamed = client.post(path, content=(b"x" * 8192 for _ in range(MAX_BODY_BYTES // 8192 + 1)),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413, path


def test_a_body_at_the_limit_is_read(model_client):
    body = b'{"prompt": "' + b"a" * (MAX_BODY_BYTES - 20) + b'"}'
    r = model_client.post("/api/v1/generate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "prompt"]  # too long a prompt, read


def test_a_boolean_seed_is_refused_where_a_number_is_asked(model_client):
    r = model_client.post("/api/v1/generate/grid", json={"prompt": "a red circle", "seed": False, "steps": 1,
                                                         "scales": [1], "seeds": 1})
    assert r.status_code == 422
    assert [(e["loc"], e["type"]) for e in r.json()["detail"]] == [(["body", "seed"], "bool_not_number")]


# ---------------------------------------------------------------------------------------------- served limits

VALIDATE = "/api/v1/generate/validate"
CAPPED = [("POST", "/api/v1/generate", {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("GET", "/api/v1/generate/stream", {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("GET", VALIDATE, {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("POST", "/api/v1/generate/grid", {"prompt": "a red circle"}, ("steps",)),
          ("POST", "/api/v1/generate/sweep", {}, ("steps",)),
          ("POST", "/api/v1/generate/guidance", {"prompt": "a red circle"}, ("steps",)),
          ("POST", "/api/v1/generate/video", {"prompt": "a red circle moving left"}, ("steps", "frames")),
          ("GET", "/api/v1/generate/video/stream", {"prompt": "a red circle moving left"}, ("steps", "frames")),
          ("GET", "/api/v1/instruments/coherence/attention", {}, ("frames",)),
          ("POST", "/v1/images/generations", {"prompt": "a red circle"}, ("steps", "n")),
          ("POST", "/sdapi/v1/txt2img", {"prompt": "a red circle", "width": 32, "height": 32},
           ("steps", "batch_size", "n_iter"))]
SERVED = {"steps": 50, "batch_size": 4, "n": 4, "n_iter": 4, "frames": 8}


def test_the_document_states_the_limits_this_server_serves(model_client):
    """The tiny model's app: DIFFUSION_LAB_MAX_STEPS=50, MAX_BATCH=4, a video model of 8 frames."""
    served = SERVED
    spec = model_client.get("/openapi.json").json()
    for method, path, _, fields in CAPPED:
        operation = spec["paths"][path][method.lower()]
        if method == "GET":
            stated = {p["name"]: p["schema"].get("maximum") for p in operation["parameters"]}
        else:
            name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
            stated = {k: v.get("maximum") for k, v in spec["components"]["schemas"][name]["properties"].items()}
        assert {field: stated[field] for field in fields} == {field: served[field] for field in fields}, path


# The check answers the stream's errors in a 200 (tests/api/test_stream_api.py holds it to the stream's 422).
REFUSING = [c for c in CAPPED if c[1] != VALIDATE]


@pytest.mark.parametrize(("method", "path", "body", "fields"), REFUSING, ids=[c[1] for c in REFUSING])
def test_one_rule_one_message_however_far_above_the_limit(model_client, method, path, body, fields):
    served = SERVED
    for field in fields:
        messages = set()
        for value in (served[field] + 1, 10**6):
            request = {**body, field: value}
            r = (model_client.post(path, json=request) if method == "POST" else model_client.get(path, params=request))
            assert r.status_code == bad_fields_status(path), (path, field, value, r.text)
            if path.startswith(OPENAI_PREFIX):
                error = r.json()["error"]
                assert (error["param"], error["code"]) == (field, "less_than_equal")
                assert f"less than or equal to {served[field]}" in error["message"]
                messages.add(error["message"])
                continue
            [error] = [e for e in r.json()["detail"] if e["loc"][-1] == field]
            assert error["ctx"]["le"] == served[field]
            messages.add(error["msg"])
        assert len(messages) == 1, (path, field, messages)


def test_every_operation_is_listed_once_under_one_tag(client):
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("tags", [])) == 1, (method, path, operation.get("tags"))


def test_every_operation_that_takes_input_declares_its_422_with_the_error_shape(client):
    """All but the check, whose answer to a request it would refuse is a 200 listing the errors; OpenAI's API
    declares its 400 with the official error object instead."""
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if (operation.get("parameters") or operation.get("requestBody")) and path != VALIDATE:
                status, body = (("400", "OpenAIErrorBody") if path.startswith(OPENAI_PREFIX)
                                else ("422", "Unprocessable"))
                response = operation["responses"][status]
                assert response["content"] == {"application/json": {"schema": {
                    "$ref": f"#/components/schemas/{body}"}}}, (method, path)
                assert isinstance(response[CROSS_FIELD_RULES], dict), (method, path)
                assert path.startswith(OPENAI_PREFIX) is ("422" not in operation["responses"]), (method, path)
            for status, response in operation["responses"].items():  # the streams' errors too: JSON bodies
                assert status[0] not in "45" or list(response.get("content", {JSON: 1})) == [JSON], (method, path)


def test_the_422_states_the_rules_the_schema_cannot(client):
    paths = client.get("/openapi.json").json()["paths"]
    rules = {path: set(paths[path][method]["responses"]["422"][CROSS_FIELD_RULES]) for path, method in (
        ("/api/v1/generate", "post"), ("/api/v1/generate/grid", "post"), ("/api/v1/instruments/compression", "get"),
        ("/api/v1/instruments/guidance", "get"))}
    prompt_rules = {"prompt_unknown_words", "prompt_invalid", "prompt_not_learned"}
    assert rules == {"/api/v1/generate": {*prompt_rules, "seed_range", "guidance_method_needs", "knob_family"},
                     "/api/v1/generate/grid": {*prompt_rules, "grid_too_large", "seed_range",
                                               "guidance_method_needs", "knob_family"},
                     "/api/v1/instruments/compression": {"f_divides_image", "patch_divides_latent"},
                     "/api/v1/instruments/guidance": set()}


def test_a_default_above_the_served_limit_is_stated_as_required():
    """DIFFUSION_LAB_MAX_STEPS=10 is below the default of 20 steps: a request must give steps, and the document
    says so; at 50 (model_client) the default stands."""
    with TestClient(create_app(settings_for_tests(max_steps=10))) as client:
        spec = client.get("/openapi.json").json()
        body = spec["components"]["schemas"]["GenerateRequest"]
        assert "steps" in body["required"] and "default" not in body["properties"]["steps"]
        query = {p["name"]: p for p in spec["paths"][VALIDATE]["get"]["parameters"]}
        assert query["steps"]["required"] is True and "default" not in query["steps"]["schema"]
        refused = client.get(VALIDATE, params={"prompt": "a red circle"})
        assert refused.status_code == 200 and refused.json()["errors"][0]["loc"] == ["query", "steps"]
        assert client.get(VALIDATE, params={"prompt": "a red circle", "steps": 10}).status_code == 200
    with TestClient(create_app(settings_for_tests(max_steps=50))) as client:
        spec = client.get("/openapi.json").json()
        assert spec["components"]["schemas"]["GenerateRequest"]["properties"]["steps"]["default"] == 20
