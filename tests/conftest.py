import os

import pytest
import torch

# Two cores on CI: keep each test process to one intra-op thread pool of modest size.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GANFORGE_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set GANFORGE_SLOW=1 (make test-slow) to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data():
    path = os.path.abspath(SHARED)
    if not os.path.isdir(path):
        pytest.skip(f"../shared/data not present at {path}")
    return path
