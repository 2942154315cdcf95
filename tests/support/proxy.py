"""Debian's nginx on loopback, configured from deploy/nginx.conf, in front of test nodes.

The shipped file's directives are kept as they are (buffering, timeouts, retries, the
JSON access log with `$upstream_addr`); only addresses and paths change, so a test
through this proxy proves the configuration operators get.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ROOT, wait_http

# The upstream's server lines in deploy/nginx.conf: `server web1:5000 max_fails=...;`
_SERVERS = re.compile(r"^( *)server web1:5000( [^;]*)?;\n(?: *server web\d+:5000[^;]*;\n)*", re.M)


def nginx_conf(directory: Path, *, nodes: list[str], listen: str) -> Path:
    """deploy/nginx.conf with `nodes` (host:port) as the upstream servers, listening on
    `listen` (host:port), and its pid, temporary files and logs under `directory`."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    found = _SERVERS.search(text)
    assert found is not None, "deploy/nginx.conf has no `server web1:5000 ...;` line"
    indent, options = found.group(1), found.group(2) or ""
    servers = "".join(f"{indent}server {node}{options};\n" for node in nodes)
    text = text[: found.start()] + servers + text[found.end() :]
    text = text.replace("listen 80;", f"listen {listen};").replace("listen [::]:80;", "")
    text = text.replace("/tmp/nginx", str(directory / "nginx"))
    text = text.replace("/dev/stdout", str(directory / "access.log"))
    text = text.replace("/dev/stderr", str(directory / "error.log"))
    conf = directory / "nginx.conf"
    conf.write_text(text)
    return conf


@dataclass
class Nginx:
    url: str
    directory: Path
    proc: subprocess.Popen

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def access_log(self) -> list[dict[str, object]]:
        """The JSON access lines so far (deploy/nginx.conf's `hub` format)."""
        path = self.directory / "access.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def find_nginx() -> str | None:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    return path if Path(path).exists() else None


def start_nginx(directory: Path, *, nodes: list[str], port: int, wait: bool = True) -> Nginx:
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError("nginx is not installed (bin/install-test-deps installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    conf = nginx_conf(directory, nodes=nodes, listen=f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-e", str(directory / "error.log"), "-g", "daemon off;"],
        stderr=subprocess.STDOUT,
        stdout=open(directory / "nginx.out", "wb"),  # noqa: SIM115 - lives as long as nginx
    )
    proxy = Nginx(f"http://127.0.0.1:{port}", directory, proc)
    if wait:
        wait_http(proxy.url + "/healthz", proc=proc)
    return proxy
