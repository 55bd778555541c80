"""Request models: what every one of them refuses, read off the models themselves so a new field is covered."""

import inspect

import pytest
from pydantic import ValidationError

from app.web import schemas
from app.web.schemas.common import Strict, _is_bool, _takes_bool

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


BOOL_FIELDS = [(model, name) for model in REQUEST_MODELS for name, field in model.model_fields.items()
               if _is_bool(field.annotation)]


def test_the_boolean_fields_are_found():
    assert {(m.__name__, n) for m, n in BOOL_FIELDS} >= {("VideoRequest", "compare"), ("VideoStreamQuery", "compare"),
                                                        ("GenerateStreamQuery", "previews")}


@pytest.mark.parametrize(("model", "name"), BOOL_FIELDS, ids=[f"{m.__name__}.{n}" for m, n in BOOL_FIELDS])
@pytest.mark.parametrize("given", [0, 1, 1.0, "yes", "1", "on", "True", [True]])
def test_a_number_or_a_word_is_never_taken_for_a_boolean(model, name, given):
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: given})
    mine = [e for e in caught.value.errors() if e["loc"][:1] == (name,)]
    assert mine and mine[0]["type"] == "bool_type", caught.value.errors()


@pytest.mark.parametrize(("model", "name"), BOOL_FIELDS, ids=[f"{m.__name__}.{n}" for m, n in BOOL_FIELDS])
def test_a_boolean_is_true_or_false_in_a_body_and_the_words_in_a_query(model, name):
    """A JSON body carries JSON booleans; a query carries text, where the schema's boolean is `true` or `false`."""
    for given, expected in ((True, True), (False, False), ("true", True), ("false", False)):
        if isinstance(given, str) and not model.IN_QUERY:
            with pytest.raises(ValidationError):
                model.model_validate({name: given})
            continue
        try:
            assert getattr(model.model_validate({name: given}), name) is expected
        except ValidationError as err:  # another field's rule (a required prompt) may fail, never this one
            assert not [e for e in err.errors() if e["loc"][:1] == (name,)], err.errors()


def test_every_rule_has_one_type_and_its_models_raise_it():
    rules = [rule for model in REQUEST_MODELS for rule in model.RULES]
    assert {rule.type for rule in rules} >= {"seed_range", "prompt_unknown_words", "patch_divides_latent",
                                              "beta_order", "interval_order", "grid_too_large", "sweep_too_large"}
    broken = {  # one request per model that breaks a rule the schema cannot state
        schemas.CompressionQuery: ({"patch": 3}, "patch_divides_latent"),
        schemas.DenoisingQuery: ({"beta_start": 0.1, "beta_end": 0.05}, "beta_order"),
        schemas.CoherenceQuery: ({"latent_width": 9}, "patch_divides_axis"),
        schemas.GenerateRequest: ({"prompt": "a red circle", "seed": schemas.MAX_SEED, "batch_size": 2}, "seed_range"),
        schemas.VideoRequest: ({"prompt": "a red blue circle moving up"}, "prompt_invalid"),
        schemas.GridRequest: ({"prompt": "a red circle", "scales": [1] * 8, "seeds": 8}, "grid_too_large"),
        schemas.SweepRequest: ({"prompts": 8, "seeds": 4}, "sweep_too_large"),
        schemas.GuidanceAnatomyRequest: ({"prompt": "a red circle", "steps": 4, "at_step": 4}, "at_step_range"),
        schemas.GuidanceInterval: ({"start": 0.9, "end": 0.1}, "interval_order"),
        schemas.ImagesRequest: ({"prompt": "a red circle", "seed": schemas.MAX_SEED, "n": 2}, "seed_range"),
        schemas.Txt2ImgRequest: ({"sampler_index": "Euler a"}, "sampler_unknown"),
    }
    for model, (request, kind) in broken.items():
        with pytest.raises(ValidationError) as caught:
            model.model_validate(request)
        assert [e["type"] for e in caught.value.errors()] == [kind], (model, caught.value.errors())
        assert kind in {rule.type for rule in model.RULES}, model
