"""deploy/kubernetes/: every manifest validated offline and strictly (unknown fields refused) against the
Kubernetes API schemas that `kubernetes-validate` ships, plus the properties the deployment relies on.
A broken copy must fail the same validation."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.37.0"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def validate_file(path: Path) -> None:
    """Raises kubernetes_validate.ValidationError (or a YAML error) for any invalid document."""
    for doc in documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    found = {}
    for name in kustomization()["resources"]:
        for doc in documents(K8S / name):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_kustomization_lists_every_manifest():
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)


@pytest.mark.parametrize("name", sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_manifest_validates_strictly(name):
    validate_file(K8S / name)


@pytest.mark.parametrize(
    "old,new",
    [
        ("  replicas: 1\n", "  replicass: 1\n"),  # unknown field
        ("  replicas: 1\n", "  replicas: one\n"),  # wrong type
        ("apiVersion: apps/v1", "apiVersion: apps/v9"),  # no such API
    ],
    ids=["unknown-field", "wrong-type", "unknown-api"],
)
def test_a_broken_copy_fails_validation(tmp_path, old, new):
    text = (K8S / "beat.yaml").read_text()
    assert old in text
    broken = tmp_path / "beat.yaml"
    broken.write_text(text.replace(old, new, 1))
    with pytest.raises((kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError)):
        validate_file(broken)


def pod_spec(objects, kind: str, name: str) -> dict:
    return objects[(kind, name)]["spec"]["template"]["spec"]


def test_deployments_select_their_pods_and_read_existing_config(objects):
    for (kind, name), obj in objects.items():
        if kind not in {"Deployment", "Job"}:
            continue
        if kind == "Deployment":
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec.get("initContainers", []) + spec["containers"]:
            refs = {(k, v["name"]) for ref in container["envFrom"] for k, v in ref.items()}
            assert refs == {("configMapRef", "labelhub-config"), ("secretRef", "labelhub-secrets")}
            assert {("ConfigMap", "labelhub-config"), ("Secret", "labelhub-secrets")} <= set(objects)
            assert container["image"] in {i["name"] for i in kustomization()["images"]}
        if kind == "Deployment":  # every role waits for the migrate Job's work
            assert "migrate --check" in " ".join(spec["initContainers"][0]["command"]), name


def test_api_probes_hit_the_health_endpoints(objects):
    (api,) = pod_spec(objects, "Deployment", "labelhub-api")["containers"]
    ready, live = api["readinessProbe"]["httpGet"], api["livenessProbe"]["httpGet"]
    assert resolve(ready["path"]).func.__name__ == "ready" and resolve(live["path"]).func.__name__ == "live"
    hosts = objects[("ConfigMap", "labelhub-config")]["data"]["LABELHUB_ALLOWED_HOSTS"].split(",")
    for probe in (ready, live):  # the Host header the probes send is one Django accepts
        assert {h["name"]: h["value"] for h in probe["httpHeaders"]}["Host"] in hosts
    service = objects[("Service", "labelhub-api")]
    assert (
        service["spec"]["selector"]
        == objects[("Deployment", "labelhub-api")]["spec"]["selector"]["matchLabels"]
    )


def test_gpu_workers_request_gpus_on_gpu_nodes_and_cpu_workers_do_not(objects):
    gpu = pod_spec(objects, "Deployment", "labelhub-worker-gpu")
    (worker,) = gpu["containers"]
    assert worker["args"] == ["worker-gpu"] and worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    (cpu,) = pod_spec(objects, "Deployment", "labelhub-worker-cpu")["containers"]
    assert cpu["args"] == ["worker-cpu"] and "nvidia.com/gpu" not in str(cpu["resources"])


def test_beat_is_a_single_replica_that_never_overlaps(objects):
    beat = objects[("Deployment", "labelhub-beat")]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"


def test_migrate_job_and_autoscalers(objects):
    (job,) = pod_spec(objects, "Job", "labelhub-migrate")["containers"]
    assert job["args"] == ["migrate", "--noinput"]
    targets = {
        obj["spec"]["scaleTargetRef"]["name"]
        for (kind, _), obj in objects.items()
        if kind == "HorizontalPodAutoscaler"
    }
    assert targets == {"labelhub-api", "labelhub-worker-cpu"} and all(
        ("Deployment", t) in objects for t in targets
    )
    for target in targets:  # utilization targets need CPU requests
        for container in pod_spec(objects, "Deployment", target)["containers"]:
            assert container["resources"]["requests"]["cpu"]


def test_broker_and_cache_are_separate_redis(objects):
    data = objects[("ConfigMap", "labelhub-config")]["data"]
    broker, results, cache = (
        urlsplit(data[k]).hostname for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL")
    )
    assert broker == results and broker != cache
    secret = objects[("Secret", "labelhub-secrets")]["stringData"]
    assert {"LABELHUB_SECRET_KEY", "DATABASE_URL", "LABELHUB_S3_ACCESS_KEY", "LABELHUB_S3_SECRET_KEY"} <= set(
        secret
    )


def test_every_variable_set_here_is_documented_in_the_readme(objects):
    readme = (ROOT / "README.md").read_text()
    names = set(objects[("ConfigMap", "labelhub-config")]["data"]) | set(
        objects[("Secret", "labelhub-secrets")]["stringData"]
    )
    assert not [n for n in sorted(names) if f"`{n}`" not in readme]


def test_every_worker_has_a_liveness_probe_pinging_its_own_node(objects):
    """A worker that died or hung (a broker outage used to end the prefork `cpu` worker) is restarted by
    the kubelet: its probe pings the node name the entrypoint gives it (`-n <queue>@%h`)."""
    entrypoint = (Path(__file__).resolve().parents[2] / "deploy" / "entrypoint.sh").read_text()
    for queue in ("cpu", "gpu", "interactive", "train"):
        (worker,) = pod_spec(objects, "Deployment", f"labelhub-worker-{queue}")["containers"]
        probe = worker["livenessProbe"]
        command = " ".join(probe["exec"]["command"])
        assert "inspect ping" in command and f"-d {queue}@$HOSTNAME" in command, queue
        assert f'-n "{queue}@%h"' in entrypoint
        assert probe["failureThreshold"] >= 1 and probe["periodSeconds"] > 0
