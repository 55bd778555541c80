"""deploy/ against the published schemas, offline: every Kubernetes manifest against the Kubernetes API's OpenAPI
schemas (kubernetes-validate bundles them per release), every compose file against the Compose Specification's JSON
schema (the copy check-jsonschema vendors, `vendor.compose-spec`). Each validator is also shown a broken copy, so a
validator that passed everything would fail here."""

import copy
import importlib.resources
import json

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.test_deploy import COMPOSE_FILES, K8S, compose, load_all

# The oldest release still maintained when the manifests were written, and the newest the package knows.
K8S_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
NOT_API_OBJECTS = {"Kustomization"}  # kustomize's own file, read by kubectl, not sent to the API server


def manifests() -> list[tuple[str, dict]]:
    return [(f"{path.name}:{doc['kind']}", doc) for path in sorted(K8S.glob("*.yaml")) for doc in load_all(path)
            if doc["kind"] not in NOT_API_OBJECTS]


def compose_validator() -> jsonschema.protocols.Validator:
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_every_api_object_in_k8s_is_checked():
    kinds = sorted(name.split(":")[1] for name, _ in manifests())
    assert kinds == ["Deployment", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("name", "doc"), manifests(), ids=[name for name, _ in manifests()])
def test_every_kubernetes_manifest_is_valid_for_the_api(name, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)  # strict: an unknown (misspelt) field is an error


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda d: d["spec"].__setitem__("replicas", "two"), "is not of type"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("livenessProbes", {}), "livenessProbes"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "'name' is a required property"),
])
def test_a_broken_deployment_is_refused(break_it, message):
    (deployment,) = load_all(K8S / "deployment.yaml")
    broken = copy.deepcopy(deployment)
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_compose_file_follows_the_compose_specification(name):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in compose_validator().iter_errors(compose(name))]
    assert errors == []


def test_a_broken_compose_file_is_refused():
    broken = compose("docker-compose.scale.yml")
    broken["services"]["app"]["stop_grace_perid"] = "25s"  # misspelt
    broken["services"]["proxy"]["ports"] = "8080:80"  # a list, not a string
    messages = [e.message for e in compose_validator().iter_errors(broken)]
    assert any("stop_grace_perid" in m for m in messages)
    assert any("is not of type 'array'" in m for m in messages)
