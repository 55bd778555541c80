"""Several `diffusion-lab serve` processes behind Debian's nginx, run with the repository's deploy/nginx.conf.

The configuration is used as written except where it names Docker: its resolver (Docker's DNS) is dropped, the one
`server app:8000 resolve;` becomes one `server` line per replica on the loopback, `listen 80` a free loopback port,
and the access log, pid file and temporary files move into the test's folder. Each replacement must find the line it
replaces, so a change to deploy/nginx.conf that these tests no longer match fails loudly instead of being skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.models import REPO_ROOT
from tests.helpers.server import free_port

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
ACCESS_LOG = "access.log"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise AssertionError(f"deploy/nginx.conf: expected one line matching {pattern!r}, found {count}")
    return new


def adapt_nginx_conf(text: str, listen_port: int, upstream_ports: list[int], workdir: Path) -> str:
    """deploy/nginx.conf for replicas on 127.0.0.1:upstream_ports instead of Docker's `app` service."""
    text = _replace_once(text, r"^\s*resolver 127\.0\.0\.11\b.*;\n", "")
    servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstream_ports)
    text = _replace_once(text, r"^\s*server app:8000 resolve;\n", servers)
    text = _replace_once(text, r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{listen_port};")
    text = _replace_once(text, r"access_log /dev/stdout main;", f"access_log {workdir / ACCESS_LOG} main;")
    temp = "".join(f"    {name}_temp_path {workdir / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                              "scgi"))
    text = _replace_once(text, r"^http \{\n", "http {\n" + temp)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would run as `nobody` and miss the folder
    return f"{user}pid {workdir / 'nginx.pid'};\n" + text


def wait_for(url: str, timeout: float = 60.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == status:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer {status} within {timeout} s")
        time.sleep(0.1)


@dataclass
class Replica:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_replica(env: dict[str, str], log: Path) -> Replica:
    """`diffusion-lab serve` (as `python -m app.cli serve`, so this checkout's code runs) on a free port."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    return Replica(port, process)


def start_nginx(workdir: Path, conf: str) -> subprocess.Popen:
    path = workdir / "nginx.conf"
    path.write_text(conf)
    binary = nginx_binary()
    subprocess.run([binary, "-t", "-p", str(workdir), "-c", str(path), "-e", str(workdir / "error.log")], check=True,
                   capture_output=True)
    return subprocess.Popen([binary, "-p", str(workdir), "-c", str(path), "-e", str(workdir / "error.log"),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send sig and wait; kill it if it outlives timeout. Returns its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def upstreams_of(access_log: Path, request_ids: list[str], timeout: float = 10.0) -> dict[str, list[str]]:
    """Per request id, the replicas nginx tried, in order (more than one when it passed the request on). nginx logs
    a request after its response has gone out, so this waits for every id to be logged."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for line in access_log.read_text().splitlines():
            rid = line.split("request_id=", 1)[1].split()[0]
            found[rid] = [u.strip() for u in line.rsplit("upstream=", 1)[1].split(",")]
        if set(request_ids) <= set(found) or time.monotonic() > deadline:
            return {rid: found.get(rid, []) for rid in request_ids}
        time.sleep(0.05)
