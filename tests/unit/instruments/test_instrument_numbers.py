"""Every number the four instrument endpoints answer stays what it was before they were made faster (issue 18 §5).

data/instrument_numbers.json holds their JSON answers over a grid of inputs as the code computed them before the
speed-up (`python tests/unit/instruments/test_instrument_numbers.py` wrote it from that code). Each answer is
compared field by field: integers, strings and the shape of every list exactly, floats to a relative 1e-12 (a
vectorised sum may round its last bit differently; a page shows four decimals at most).
"""

import json
import math
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.models import settings_for_tests

GOLDEN = Path(__file__).parent / "data" / "instrument_numbers.json"
REL = 1e-12
CASES = {
    "compression": [{}, {"height": 64, "width": 64, "f": 8, "channels": 4, "patch": 1},
                    {"height": 1024, "width": 768, "f": 16, "channels": 16, "patch": 2},
                    {"height": 256, "width": 512, "f": 4, "channels": 3, "patch": 4}],
    "guidance": [{}, {"scale": 0}, {"scale": 1}, {"scale": 3.3}, {"scale": 20, "seed": 5},
                 {"scale": 7.5, "prompt_class": "blue", "samples": 64}, {"scale": 12.25, "seed": 2, "samples": 100},
                 {"scale": 2, "eps_uncond": -0.4, "eps_cond": 0.9}],
    "coherence": [{}, {"coherence": 0}, {"coherence": 1}, {"coherence": 0.37, "frames": 2},
                  {"coherence": 0.8, "frames": 16, "seed": 3}, {"coherence": 0.5, "frames": 64, "seed": 1},
                  {"coherence": 0.5, "frames": 12, "p_t": 4, "p_h": 4, "p_w": 1, "latent_height": 64,
                   "latent_width": 16}],
    "denoising": [{}, {"steps": 2}, {"steps": 10, "seed": 4}, {"steps": 200, "eps_error": 0.3},
                  {"target_x": -2.5, "target_y": 3, "beta_start": 1e-4, "beta_end": 0.02, "steps": 300},
                  {"eps_error": 0.05, "signal_fraction": 0}, {"signal_fraction": 1, "seed": 7}],
}


def answers(client) -> dict:
    out = {}
    for name, cases in CASES.items():
        for i, params in enumerate(cases):
            r = client.get(f"/api/v1/instruments/{name}", params=params)
            assert r.status_code == 200, (name, params, r.text)
            out[f"{name}-{i}"] = r.json()
    return out


def assert_same(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, int | float) and math.isclose(got, want, rel_tol=REL, abs_tol=1e-300), \
            f"{where}: {got!r} != {want!r}"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(settings_for_tests())) as c:
        yield c


@pytest.mark.parametrize("case", [f"{n}-{i}" for n, cases in CASES.items() for i in range(len(cases))])
def test_every_number_is_what_it_was(client, case):
    golden = json.loads(GOLDEN.read_text())
    name, i = case.rsplit("-", 1)
    r = client.get(f"/api/v1/instruments/{name}", params=CASES[name][int(i)])
    assert r.status_code == 200
    assert_same(r.json(), golden[case], case)
    again = client.get(f"/api/v1/instruments/{name}", params=CASES[name][int(i)])  # a second time: from any cache
    assert again.content == r.content


def test_the_comparison_sees_a_change_in_the_last_places():
    with pytest.raises(AssertionError):
        assert_same({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-9]}, "x")
    with pytest.raises(AssertionError):
        assert_same({"a": [1, 2]}, {"a": [1, 2, 3]}, "x")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    with TestClient(create_app(settings_for_tests())) as c:
        GOLDEN.write_text(json.dumps(answers(c), indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {GOLDEN}")
