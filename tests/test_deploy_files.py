"""deploy/: the Dockerfile, compose file, nginx config and Kubernetes manifests say what
the README promises (no Docker, cluster or compose here: we read them, and run `nginx -t`
and `kubectl kustomize` when those are installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "kubernetes"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def by_name(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_it_builds_one_non_root_image_from_a_chosen_base() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    assert len(re.findall(r"^FROM \$\{BASE_IMAGE\}", text, re.M)) == 2  # build, runtime
    assert "pip wheel" in text and "COPY --from=build" in text
    assert re.search(r"^USER 10001", text, re.M)
    assert "collectstatic" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert '["hub"]' in text


def test_it_puts_every_app_and_the_web_ui_files_in_the_image() -> None:
    """A package or folder the image lacks fails only at run time (a missing template)."""
    text = (DEPLOY / "Dockerfile").read_text()
    root = DEPLOY.parent
    packages = [p.name for p in root.iterdir() if (p / "apps.py").is_file()]
    assert packages, "no Django apps found"
    for name in [*packages, "templates", "static"]:
        assert re.search(rf"^COPY {name} {name}$", text, re.M), name
    assert "cp -r templates static" in text


def test_it_composes_two_nodes_behind_nginx_after_one_migration() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "minio", "migrate", "web1", "web2", "worker", "scheduler"} <= set(
        services
    )
    for name in ("web1", "web2", "worker", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["command"] == ["migrate", "--noinput"]
    assert services["web1"]["command"][:2] == ["serve", "--no-migrate"]
    assert services["worker"]["command"][0] == "worker"
    assert services["scheduler"]["command"] == ["beat"]
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == {"web1", "web2"}
    address = nginx["networks"]["hub"]["ipv4_address"]
    assert services["web1"]["environment"]["HUB_TRUSTED_PROXIES"] == address
    assert services["web1"]["environment"]["HUB_LOG_FORMAT"] == "json"
    assert {"postgres-data", "minio-data", "redis-data"} <= set(compose()["volumes"])


def test_it_proxies_layers_without_limits_or_buffering() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    for directive in (
        "client_max_body_size 0;",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_read_timeout 3600s;",
        "server web1:5000",
        "server web2:5000",
    ):
        assert directive in text, directive
    assert re.search(r"^\s+keepalive \d+;", text, re.M)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_it_passes_nginx_own_check(tmp_path: Path) -> None:
    # The nodes' names resolve only inside compose's network: loopback stands in here.
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("web1:5000", "127.0.0.1:5025").replace("web2:5000", "127.0.0.1:5026")
    text = text.replace("listen 80;", "listen 127.0.0.1:5027;").replace("listen [::]:80;", "")
    # nginx -t creates the temporary directories: keep them out of the shared /tmp.
    text = text.replace("/tmp/nginx", str(tmp_path / "nginx"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    done = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_it_probes_web_pods_for_health_and_readiness() -> None:
    web = by_name("Deployment", "hub-web")["spec"]["template"]["spec"]
    (container,) = web["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"][:2] == ["serve", "--no-migrate"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # Drain uploads: the pod may take longer than Hub's own graceful timeout.
    assert web["terminationGracePeriodSeconds"] > 300
    assert "migrate --check" in " ".join(web["initContainers"][0]["command"])


def test_it_runs_every_pod_as_a_non_root_user() -> None:
    for doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"]
            assert {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
            assert {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}


def test_it_scales_web_and_workers_but_keeps_one_scheduler() -> None:
    assert by_name("Deployment", "hub-scheduler")["spec"]["replicas"] == 1
    assert by_name("Deployment", "hub-scheduler")["spec"]["strategy"]["type"] == "Recreate"
    assert by_name("Deployment", "hub-worker")["spec"]["template"]["spec"]["containers"][0]["args"][
        0
    ] == ("worker")
    hpa = by_name("HorizontalPodAutoscaler", "hub-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "hub-web"
    web_labels = by_name("Deployment", "hub-web")["spec"]["selector"]["matchLabels"]
    assert by_name("PodDisruptionBudget", "hub-web")["spec"]["selector"]["matchLabels"] == (
        web_labels
    )
    assert by_name("Service", "hub-web")["spec"]["selector"] == web_labels
    job = by_name("Job", "hub-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate", "--noinput"]


def test_it_has_prometheus_scrape_the_workers_and_scheduler_on_their_own_port() -> None:
    for name in ("hub-worker", "hub-scheduler"):
        template = by_name("Deployment", name)["spec"]["template"]
        container = template["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == env["HUB_WORKER_METRICS_PORT"]
        assert {p["containerPort"] for p in container["ports"]} == {
            int(env["HUB_WORKER_METRICS_PORT"])
        }


def test_it_lets_layers_through_the_ingress() -> None:
    annotations = by_name("Ingress", "hub")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-body-size"] == "0"
    assert annotations[prefix + "proxy-request-buffering"] == "off"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 3600


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_it_renders_with_kustomize() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(done.stdout) if d)
    assert kinds.count("Deployment") == 3
    assert "image: hub\n" not in done.stdout  # the images: entry names the real image
