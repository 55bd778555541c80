"""app/web/dialects/shapes.py: each API's error body, chosen by the path."""

import json

from app.web.dialects.shapes import A1111, OPENAI, OURS, shape_for


def body(response) -> dict:
    return json.loads(response.body)


def test_the_path_picks_the_shape():
    assert shape_for("/v1/images/generations") is OPENAI and shape_for("/v1/models") is OPENAI
    assert shape_for("/sdapi/v1/txt2img") is A1111
    assert shape_for("/api/v1/generate") is OURS and shape_for("/v1") is OURS and shape_for("/") is OURS


def test_openai_names_the_field_in_param_and_the_rule_in_code():
    answer = OPENAI.invalid([{"type": "size_unavailable", "loc": ["body", "size"], "msg": "only 64x64"},
                             {"type": "less_than_equal", "loc": ["body", "n"], "msg": "at most 8"}])
    assert answer.status_code == 400
    assert body(answer) == {"error": {"message": "Invalid value for 'size': only 64x64; Invalid value for 'n': "
                                                 "at most 8", "type": "invalid_request_error", "param": "size",
                                      "code": "size_unavailable"}}
    unknown = body(OPENAI.invalid([{"type": "extra_forbidden", "loc": ["body", "width"], "msg": "Extra inputs"}]))
    assert unknown["error"]["message"] == "Unknown parameter: 'width'"
    whole = body(OPENAI.invalid([{"type": "json_invalid", "loc": ["body", 3], "msg": "JSON decode error"}]))
    assert whole["error"] == {"message": "JSON decode error", "type": "invalid_request_error", "param": None,
                              "code": "json_invalid"}


def test_openai_refusals_by_status():
    full = OPENAI.refusal(429, "busy", {"Retry-After": "3"})
    assert full.status_code == 429 and full.headers["retry-after"] == "3"
    assert body(full)["error"] == {"message": "busy", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    assert body(OPENAI.refusal(503, "loading"))["error"]["type"] == "server_error"
    assert body(OPENAI.refusal(401, "key"))["error"]["code"] == "invalid_api_key"


def test_a1111_keeps_our_detail_beside_its_own_keys_and_our_422():
    assert body(A1111.refusal(429, "busy")) == {"error": "HTTPException", "detail": "busy", "body": "",
                                                "errors": "busy"}
    errors = [{"type": "size_unavailable", "loc": ["body", "width"], "msg": "only 64"}]
    assert A1111.invalid(errors).status_code == 422 and body(A1111.invalid(errors)) == {"detail": errors}
    assert body(OURS.refusal(429, "busy")) == {"detail": "busy"}
