"""The same seed gives the same bytes: PNGs and APNGs from the committed weights, pinned across refactorings.

The digests were recorded before app/ was rearranged into packages (issue 13); a change that moves code must
leave them as they are. A change that is meant to alter the pictures (new weights, a new sampler) re-records
them and says why in its commit.
"""

import base64
import hashlib

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.pipelines.image import WEIGHT_FILES
from app.pipelines.video import VIDEO_WEIGHT_FILES
from tests.helpers.models import COMMITTED_MODELS, model_settings

pytestmark = [
    pytest.mark.weights,
    pytest.mark.skipif(not all((COMMITTED_MODELS / f).is_file() for f in (*WEIGHT_FILES.values(), *VIDEO_WEIGHT_FILES.values())),
                       reason="the trained weights are not in models/"),
]

IMAGE_REQUESTS = {
    "dpmpp_2m, batch of 2": (
        {"prompt": "a large red circle at the top left", "seed": 7, "steps": 12, "guidance_scale": 5, "batch_size": 2},
        "f2364e5ba33696c6abecb8dca0826d3608c6d2df16fc995da49a3c209f867299",
    ),
    "ddim with eta, negative prompt, rescale": (
        {"prompt": "a small blue triangle", "negative_prompt": "a red triangle", "seed": 3, "steps": 10,
         "sampler": "ddim", "eta": 0.5, "guidance_scale": 3, "guidance_rescale": 0.7},
        "190448865e1408d2205156d99bc3895a3eea9411ce12e9628d50e8212a2f5287",
    ),
}
VIDEO_REQUEST = ({"prompt": "a large green square moving up right", "seed": 5, "steps": 8, "frames": 8,
                  "compare": True, "include_frames": True},
                 "2b1c4c56a8631ac0e6f8d720bdec2e935c00e1fdb566d410825b728251f98cda")


def digest(pieces: list[str]) -> str:
    """SHA-256 over the decoded bytes of base64 pieces, in order."""
    h = hashlib.sha256()
    for piece in pieces:
        h.update(base64.b64decode(piece))
    return h.hexdigest()


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(model_settings(COMMITTED_MODELS))) as c:
        yield c


@pytest.mark.parametrize("name", IMAGE_REQUESTS)
def test_an_image_request_gives_the_recorded_png_bytes(client, name):
    body, expected = IMAGE_REQUESTS[name]
    response = client.post("/api/v1/generate", json=body)
    assert response.status_code == 200, response.text
    assert digest([image["png_base64"] for image in response.json()["images"]]) == expected


def test_a_clip_request_gives_the_recorded_apng_and_frame_bytes(client):
    body, expected = VIDEO_REQUEST
    response = client.post("/api/v1/generate/video", json=body)
    assert response.status_code == 200, response.text
    video, baseline = response.json()["video"], response.json()["baseline"]
    pieces = [video["animation"]["base64"], baseline["animation"]["base64"], *video["frames"], *baseline["frames"]]
    assert digest(pieces) == expected
