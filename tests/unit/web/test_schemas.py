"""Request models: what every one of them refuses, read off the models themselves so a new field is covered."""

import inspect

import pytest
from pydantic import ValidationError

from app.web import schemas
from app.web.schemas.common import Strict, _takes_bool

REQUEST_MODELS = sorted({m for m in vars(schemas).values() if inspect.isclass(m) and issubclass(m, Strict)
                         and m is not Strict}, key=lambda m: m.__name__)
NUMBER_FIELDS = [(model, name) for model in REQUEST_MODELS for name, field in model.model_fields.items()
                 if not _takes_bool(field.annotation) and field.annotation is not str]


def test_the_request_models_are_found():
    names = {m.__name__ for m in REQUEST_MODELS}
    assert {"GenerateRequest", "GridRequest", "SweepRequest", "VideoRequest", "CompressionQuery"} <= names
    assert len(NUMBER_FIELDS) > 40


@pytest.mark.parametrize(("model", "name"), NUMBER_FIELDS, ids=[f"{m.__name__}.{n}" for m, n in NUMBER_FIELDS])
@pytest.mark.parametrize("given", [True, False, [True]])
def test_a_boolean_is_never_taken_for_a_number(model, name, given):
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: given})
    mine = [e for e in caught.value.errors() if e["loc"][:1] == (name,)]
    assert mine and mine[0]["type"] == "bool_not_number", caught.value.errors()


FLOAT_FIELDS = [(model, name) for model, name in NUMBER_FIELDS if "float" in str(model.model_fields[name].annotation)]


@pytest.mark.parametrize(("model", "name"), FLOAT_FIELDS, ids=[f"{m.__name__}.{n}" for m, n in FLOAT_FIELDS])
@pytest.mark.parametrize("given", [float("nan"), float("inf"), "-inf"])
def test_a_non_finite_number_gets_the_one_message_everywhere(model, name, given):
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: given if "list" not in str(model.model_fields[name].annotation) else [given]})
    mine = [e for e in caught.value.errors() if e["loc"][:1] == (name,)]
    assert mine and mine[0]["type"] == "finite_number", caught.value.errors()


def test_boolean_fields_still_take_booleans():
    assert schemas.VideoRequest.model_validate({"prompt": "a red circle moving left", "compare": True}).compare
