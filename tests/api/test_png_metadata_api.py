"""Every PNG, whatever API made it, says it was generated (XMP with IPTC's trainedAlgorithmicMedia, read by Debian's
exiftool) and names its sampler the way AUTOMATIC1111 does (read by sd-parsers)."""

import base64
import json

import httpx
import pytest
import webuiapi
from openai import OpenAI

from tests.helpers.metadata import TRAINED_ALGORITHMIC_MEDIA, exiftool_tags, needs_exiftool, sd_parsers_read

PROMPT, SEED = "a small yellow square", 11


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def made(model_live_server) -> dict[str, bytes]:
    """One image per API and preview kind, all with DDIM, 4 steps, seed 11."""
    server = model_live_server
    ours = httpx.post(f"{server}/api/v1/generate", timeout=60, json={
        "prompt": PROMPT, "seed": SEED, "steps": 4, "sampler": "ddim"}).json()["images"][0]["png_base64"]
    openai = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    sdk = openai.images.generate(prompt=PROMPT, extra_body={"seed": SEED, "steps": 4, "sampler": "ddim"})
    partial = next(iter(openai.images.generate(prompt=PROMPT, stream=True, partial_images=1,
                                               extra_body={"seed": SEED, "steps": 4, "sampler": "ddim"})))
    a1111 = webuiapi.WebUIApi(baseurl=f"{server}/sdapi/v1", sampler="DDIM").txt2img(
        prompt=PROMPT, seed=SEED, steps=4, width=32, height=32, cfg_scale=5, eta=0)  # webuiapi's defaults: 7, 1
    stream = httpx.get(f"{server}/api/v1/generate/stream", timeout=60, params={
        "prompt": PROMPT, "seed": SEED, "steps": 4, "sampler": "ddim"}).text
    step = json.loads(stream.split("event: step\ndata: ", 1)[1].split("\n", 1)[0])
    return {name: base64.b64decode(b64) for name, b64 in {
        "api-v1": ours, "openai": sdk.data[0].b64_json, "a1111": a1111.json["images"][0],
        "openai-partial": partial.b64_json, "stream-x0-hat": step["previews"]["x0_hat"],
        "stream-x-t": step["previews"]["x_t"]}.items()}


FINAL = ("api-v1", "openai", "a1111")


def test_the_three_apis_make_the_same_picture(made):
    assert made["api-v1"] == made["openai"] == made["a1111"]


@pytest.mark.parametrize("name", FINAL)
def test_sd_parsers_reads_the_sampler_by_a1111s_name(made, name):
    read = sd_parsers_read(made[name])
    assert read.generator.name == "AUTOMATIC1111"
    [sampler] = read.samplers
    assert (sampler.name, sampler.parameters["seed"], sampler.parameters["steps"]) == ("DDIM", str(SEED), "4")


@needs_exiftool
@pytest.mark.parametrize("name", ["api-v1", "openai", "a1111", "openai-partial", "stream-x0-hat", "stream-x-t"])
def test_exiftool_reads_that_it_was_generated(made, name, tmp_path):
    tags = exiftool_tags(made[name], tmp_path, f"{name}.png")
    assert tags["XMP:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    if name in FINAL:
        assert tags["PNG:Parameters"].startswith(f"{PROMPT}\nSteps: 4, Sampler: DDIM, CFG scale: 5, Eta: 0, "
                                             f"Seed: {SEED},")
