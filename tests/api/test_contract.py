"""What every POST operation answers to a body it cannot take, as its OpenAPI document says it will."""

import pytest

from app.web.middleware import MAX_BODY_BYTES


def post_paths(client) -> list[str]:
    return sorted(path for path, ops in client.get("/openapi.json").json()["paths"].items() if "post" in ops)


def test_the_post_operations_are_found(client):
    assert {"/api/v1/generate", "/api/v1/generate/video", "/api/v1/generate/grid"} <= set(post_paths(client))


def test_every_post_operation_declares_the_422_and_the_413(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in post_paths(client):
        assert {"413", "422"} <= set(paths[path]["post"]["responses"]), path


@pytest.mark.parametrize("body", [b'\xff\xfe{"prompt": "a red circle"}', b'{"prompt": "\xe9"}'])
def test_a_body_that_is_not_utf8_json_is_a_422_naming_the_body(client, body):
    for path in post_paths(client):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, (path, r.text)
        [error] = r.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"][0] == "body"  # [body], or [body, offset]


def test_a_body_over_the_limit_is_a_413_whether_its_length_is_said_or_not(client):
    big = {"prompt": "a" * (MAX_BODY_BYTES + 1)}
    for path in post_paths(client):
        said = client.post(path, json=big)
        assert said.status_code == 413 and str(MAX_BODY_BYTES) in said.json()["detail"], path
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

CAPPED = [("POST", "/api/v1/generate", {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("GET", "/api/v1/generate/stream", {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("GET", "/api/v1/generate/validate", {"prompt": "a red circle"}, ("steps", "batch_size")),
          ("POST", "/api/v1/generate/grid", {"prompt": "a red circle"}, ("steps",)),
          ("POST", "/api/v1/generate/sweep", {}, ("steps",)),
          ("POST", "/api/v1/generate/guidance", {"prompt": "a red circle"}, ("steps",)),
          ("POST", "/api/v1/generate/video", {"prompt": "a red circle moving left"}, ("steps", "frames")),
          ("GET", "/api/v1/generate/video/stream", {"prompt": "a red circle moving left"}, ("steps", "frames")),
          ("GET", "/api/v1/instruments/coherence/attention", {}, ("frames",))]


def test_the_document_states_the_limits_this_server_serves(model_client):
    """The tiny model's app: DIFFUSION_LAB_MAX_STEPS=50, MAX_BATCH=4, a video model of 8 frames."""
    served = {"steps": 50, "batch_size": 4, "frames": 8}
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
REFUSING = [c for c in CAPPED if c[1] != "/api/v1/generate/validate"]


@pytest.mark.parametrize(("method", "path", "body", "fields"), REFUSING, ids=[c[1] for c in REFUSING])
def test_one_rule_one_message_however_far_above_the_limit(model_client, method, path, body, fields):
    served = {"steps": 50, "batch_size": 4, "frames": 8}
    for field in fields:
        messages = set()
        for value in (served[field] + 1, 10**6):
            request = {**body, field: value}
            r = (model_client.post(path, json=request) if method == "POST" else model_client.get(path, params=request))
            assert r.status_code == 422, (path, field, value, r.text)
            [error] = [e for e in r.json()["detail"] if e["loc"][-1] == field]
            assert error["ctx"]["le"] == served[field]
            messages.add(error["msg"])
        assert len(messages) == 1, (path, field, messages)


def test_every_operation_is_listed_once_under_one_tag(client):
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("tags", [])) == 1, (method, path, operation.get("tags"))
