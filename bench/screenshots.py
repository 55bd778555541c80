"""Take the README's screenshots of every page in headless Chromium, so they stay current.

Usage: python bench/screenshots.py [--out static/screenshots]
"""

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.web.routes.pages import PAGES  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "static" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, DIFFUSION_LAB_LOG_LEVEL="warning")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        targets = [("index", "/")] + [(p.path.rsplit("/", 1)[-1], p.path) for p in PAGES]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            for name, path in targets:
                if name == "generate":  # show the real model at work, not an empty form
                    path += "?prompt=a+large+red+circle+at+the+top+left&seed=7&batch_size=4"
                page.goto(base + path, wait_until="networkidle")
                if name == "generate":
                    page.click("#generate")
                    page.wait_for_selector("#results figure img", timeout=60_000)
                page.wait_for_timeout(800)  # let Plotly finish its transitions
                target = args.out / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target.relative_to(ROOT)}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
