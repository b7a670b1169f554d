from __future__ import annotations

import pytest

from .builders import make_tasks


@pytest.fixture
def one_task(org_a):
    return make_tasks(org_a.project, 1)[0]
