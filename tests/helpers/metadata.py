"""Image metadata read by independent readers: Debian's exiftool, and sd-parsers (A1111's `parameters` convention)."""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

EXIFTOOL = shutil.which("exiftool")
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (`make test` installs it)")


def exiftool_tags(data: bytes, folder: Path, name: str = "image.png") -> dict:
    """Every tag exiftool reads in the file, by group:name (e.g. XMP:DigitalSourceType, PNG:Parameters)."""
    path = folder / name
    path.write_bytes(data)
    out = subprocess.run([EXIFTOOL, "-j", "-G", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def sd_parsers_read(png: bytes):
    """sd-parsers' PromptInfo of a PNG (None when it recognises no generator)."""
    from sd_parsers import ParserManager

    with Image.open(io.BytesIO(png)) as image:
        return ParserManager().parse(image)
