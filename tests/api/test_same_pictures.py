"""The same seed gives the same pictures: images and clips from the committed weights, pinned across refactorings.

The reference pixels (tests/api/data/same_pictures.npz) were recorded with `python -m tests.api.test_same_pictures`.
A change that only moves code must leave the pictures as they are; a change meant to alter them (new weights, a new
sampler) re-records them and says why in its commit.

Not the PNG bytes: CPUs with other vector units (AVX-512, AVX2, SSE) round a few float sums differently, which moves
about one pixel value in 10,000 by one level (measured here by forcing ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA to
each path). A code change that alters the computation moves far more than the tolerance below.
"""

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.pipelines.image import WEIGHT_FILES
from app.pipelines.video import VIDEO_WEIGHT_FILES
from tests.helpers.models import COMMITTED_MODELS, model_settings

pytestmark = [
    pytest.mark.weights,
    pytest.mark.skipif(not all((COMMITTED_MODELS / f).is_file() for f in (*WEIGHT_FILES.values(), *VIDEO_WEIGHT_FILES.values())),
                       reason="the trained weights are not in models/"),
]

REFERENCE = Path(__file__).parent / "data" / "same_pictures.npz"
MAX_LEVEL_DIFFERENCE = 2  # of 255, at any pixel
MAX_CHANGED_SHARE = 0.005  # of the pixel values

IMAGE_REQUESTS = {
    "dpmpp_2m_batch_of_2": {"prompt": "a large red circle at the top left", "seed": 7, "steps": 12,
                            "guidance_scale": 5, "batch_size": 2},
    "ddim_eta_negative_rescale": {"prompt": "a small blue triangle", "negative_prompt": "a red triangle", "seed": 3,
                                  "steps": 10, "sampler": "ddim", "eta": 0.5, "guidance_scale": 3,
                                  "guidance_rescale": 0.7},
}
VIDEO_REQUEST = {"prompt": "a large green square moving up right", "seed": 5, "steps": 8, "frames": 8,
                 "compare": True, "include_frames": True}


def decoded(pngs: list[str]) -> np.ndarray:
    """base64 PNGs -> uint8 (N, H, W, 3)."""
    return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(p))).convert("RGB")) for p in pngs])


def pictures(client) -> dict[str, np.ndarray]:
    """Every picture the pinned requests return, by name."""
    found = {}
    for name, body in IMAGE_REQUESTS.items():
        response = client.post("/api/v1/generate", json=body)
        assert response.status_code == 200, response.text
        found[name] = decoded([image["png_base64"] for image in response.json()["images"]])
    response = client.post("/api/v1/generate/video", json=VIDEO_REQUEST)
    assert response.status_code == 200, response.text
    for method in ("video", "baseline"):
        found[f"clip_{method}"] = decoded(response.json()[method]["frames"])
    return found


def client_for_committed_models() -> TestClient:
    return TestClient(create_app(model_settings(COMMITTED_MODELS)))


@pytest.fixture(scope="module")
def found():
    with client_for_committed_models() as client:
        return pictures(client)


@pytest.mark.parametrize("name", [*IMAGE_REQUESTS, "clip_video", "clip_baseline"])
def test_a_pinned_request_gives_the_recorded_pictures(found, name):
    want = np.load(REFERENCE)[name]
    got = found[name]
    assert got.shape == want.shape
    difference = np.abs(got.astype(int) - want.astype(int))
    assert difference.max() <= MAX_LEVEL_DIFFERENCE, f"a pixel moved {difference.max()} levels"
    assert (difference > 0).mean() <= MAX_CHANGED_SHARE, f"{(difference > 0).mean():.2%} of the values changed"


if __name__ == "__main__":
    with client_for_committed_models() as client:
        np.savez_compressed(REFERENCE, **pictures(client))
    print(f"recorded {REFERENCE}", file=sys.stderr)
