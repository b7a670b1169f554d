"""`manage.py check --deploy` is clean in the production configuration the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_production_env() -> dict[str, str]:
    """The `export NAME=value` lines of the README's production block."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- production-env -->", 2)[1]
    return dict(re.findall(r"^export (LABELHUB_\w+)=(\S+)$", block, flags=re.M))


def test_check_deploy_is_clean_in_the_readme_production_configuration(tmp_path):
    # the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process (Playwright keeps a loop on the test
    # thread); a deployment never has it, and `check --deploy` rightly refuses it
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LABELHUB_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    production = readme_production_env()
    assert {"LABELHUB_SECURE_SSL_REDIRECT", "LABELHUB_SECURE_HSTS_SECONDS", "LABELHUB_SECURE_COOKIES"} <= set(
        production
    )
    env.update(production)
    env["LABELHUB_SECRET_KEY"] = "k" * 20 + "-production-secret-key-of-fifty-plus-chars-x9"
    env["LABELHUB_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # and without the HTTPS settings, Django does warn: the test can fail
    env = {k: v for k, v in env.items() if not k.startswith("LABELHUB_SECURE")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "security.W004" in result.stdout + result.stderr
