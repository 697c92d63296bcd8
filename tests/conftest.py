"""Shared fixtures. Heavy objects (trained models, easy-VQA) are built once per session."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# pytest-xdist workers (tasks.py test runs one per core) share the cores: torch in each, and
# the kernels and subprocesses they start, get their share, or OpenMP threads oversubscribe
_THREADS = max(1, min(2, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
torch.set_num_threads(_THREADS)


@pytest.fixture(scope="session")
def easy_vqa_small():
    """easy-VQA with 2,000 train and 2,000 test questions, word tokenizer."""
    from mmexplain.data import load_easy_vqa

    return load_easy_vqa(limit=2000, seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny models (restored after): two intra-op threads on
    a shared 2-core machine slow them several-fold, and Ray workers use one, which audit rows
    must match bit for bit. Use with ``pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: How planted-data models are trained unless a test names its epochs: every fusion that can
#: represent each planted mode reaches it (tests/test_training.py; seeds 0-2 checked), in
#: about half the time of the library's 15 epochs at a constant 5e-4, batch 64 (one thread:
#: 28 s -> 15 s for XOR with concat).
PLANTED_SCHEDULE = {"epochs": 12, "batch_size": 128, "schedule": "onecycle", "lr": 3e-3}


@pytest.fixture(scope="session")
def trained_synthetic(tmp_path_factory):
    """Models trained on planted data, keyed by (mode, fusion, options); trained on first use
    into a folder all pytest-xdist workers share, so a model that tests in several files use
    is trained once per session (``load_or_train``'s lock: one worker trains, the others
    wait and load it)."""
    from mmexplain.training import load_or_train

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trained-synthetic"
    cache: dict = {}

    def get(mode: str, fusion: str, **kw):
        key = (mode, fusion, repr(sorted(kw.items())))
        if key not in cache:
            opts = kw if "epochs" in kw else {**PLANTED_SCHEDULE, **kw}
            cache[key] = load_or_train(shared, dataset=f"synthetic:{mode}", fusion=fusion, progress=False, **opts)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def ray_cluster():
    """A real Ray cluster for the Ray engines' tests: a local one of two CPUs, or the one
    ``MMEXPLAIN_TEST_RAY_ADDRESS`` names (e.g. after ``ray start --head --num-cpus 2``; on a
    slow, shared machine a fresh local cluster may miss Ray's own start-up timeouts)."""
    import ray

    address = os.environ.get("MMEXPLAIN_TEST_RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        # Ray's raylet gives its agents a fixed 15 s to start (ray-project/ray#65983); on a
        # busy 2-core machine a cold start can miss it, a second one finds warm caches
        for attempt in (1, 2):
            try:
                ray.init(num_cpus=2, include_dashboard=False)
                break
            except Exception as err:
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    raise
    yield ray
    ray.shutdown()
