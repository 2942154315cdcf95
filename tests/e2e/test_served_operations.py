"""`hub serve` with several workers: metrics add up across them, logs are JSON lines."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, start_hub

pytestmark = pytest.mark.e2e

PORT = int(os.environ.get("HUB_TEST_METRICS_PORT", "5022"))
TOKEN = "served-metrics-token"


def requests_counted(text: str, route: str, status: str) -> float:
    labels = rf'[^}}]*route="{re.escape(route)}"[^}}]*status="{status}"[^}}]*'
    pattern = rf"^hub_http_requests_total\{{{labels}\}} (\S+)$"
    return sum(float(m[1]) for m in re.finditer(pattern, text, re.M))


def test_it_adds_up_every_workers_counts_and_logs_json(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as db_env:
        env = {
            **db_env,
            "HUB_METRICS_ENABLED": "true",
            "HUB_METRICS_TOKEN": TOKEN,
            "HUB_LOG_FORMAT": "json",
            "HUB_ACCESS_LOG": "-",
        }
        node = start_hub(tmp_path / "node", env=env, port=PORT, args=["--workers", "3"])
        try:
            # New connections each time: the master spreads them over the workers.
            ids = []
            for _ in range(60):
                answer = requests.get(
                    f"{node.url}/v2/", auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=30
                )
                assert answer.status_code == 200
                ids.append(answer.headers["X-Request-ID"])
            scrape = requests.get(
                f"{node.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            )
            assert scrape.status_code == 200
            assert requests_counted(scrape.text, "v2:base", "200") == 60
            # Probes are not requests of the app: never counted, never audited.
            assert requests.get(f"{node.url}/readyz", timeout=30).status_code == 200
        finally:
            node.stop()
        lines = [json.loads(line) for line in node.log().splitlines() if line.startswith("{")]
        workers = {
            line["message"].rsplit(" ", 1)[-1]
            for line in lines
            if "Booting worker" in line["message"]
        }
        assert len(workers) == 3
        access = [line for line in lines if line["logger"] == "gunicorn.access"]
        served = {
            line["request_id"] for line in access if (line["path"], line["status"]) == ("/v2/", 200)
        }
        assert served == set(ids)
        assert all(
            {"time", "level", "method", "status", "duration"} <= set(line) for line in access
        )
        # Nothing but JSON on the node's output once it runs (`hub serve` included).
        stray = [line for line in node.log().splitlines() if line and not line.startswith("{")]
        assert not stray, stray
