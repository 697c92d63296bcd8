"""Ray for the engines that use it: the one place that imports it and joins or starts a cluster.

Ray is an optional extra (``pip install "mmexplain[ray]"``); nothing imports it until a Ray
engine is built. The audit engine (:mod:`mmexplain.auditing.engines`) and the report batch
engine (:mod:`mmexplain.report.engines`) both get their cluster from :func:`ray_cluster`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from .exceptions import ConfigError
from .validation import check_positive_int

__all__ = ["INSTALL_HINT", "check_address", "import_ray", "ray_cluster"]

#: How to get Ray, for messages.
INSTALL_HINT = 'pip install "mmexplain[ray]"'


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line ConfigError naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the audit engine's Ray Data; part of the extra)
    except ImportError as err:
        raise ConfigError(f"engine='ray' needs Ray ({err.name or 'ray'} is not installed): "
                          f"{INSTALL_HINT}.") from None
    return ray


def check_address(address: object) -> str | None:
    """``address`` (a Ray cluster address such as ``"auto"`` or ``"10.0.0.5:6379"``), or None."""
    if address is None:
        return None
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"address must be a Ray cluster address such as 'auto' or 'HOST:6379' "
                          f"(or None for a local cluster); got {address!r}.")
    return address.strip()


@contextlib.contextmanager
def ray_cluster(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected, for the duration of the block.

    Parameters
    ----------
    address : str, optional
        A running cluster to join (``ray start --head`` prints it; ``"auto"`` finds one on
        this machine). None: a new local cluster with ``num_cpus`` CPUs.
    num_cpus : int, optional
        CPUs of a new local cluster (default: Ray's, every core).

    Yields
    ------
    module
        ``ray``, initialised.

    Notes
    -----
    When Ray is already initialised in this process (the caller's own ``ray.init``) that
    session is used as it is, ``address`` and ``num_cpus`` notwithstanding, and left
    running. A cluster this function started or joined is shut down (left) at the end of the
    block. Workers of a new local cluster import this very ``mmexplain`` (its folder is
    put on their path); on a remote cluster, install it on every node.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = check_address(address)
    if num_cpus is not None:
        num_cpus = check_positive_int("num_cpus", num_cpus)
    kwargs: dict = {"logging_level": "warning"}
    if address is None:
        package_parent = str(Path(__file__).resolve().parents[1])
        kwargs.update(num_cpus=num_cpus, include_dashboard=False,
                      job_config=ray.job_config.JobConfig(code_search_path=[package_parent]))
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as err:
        raise ConfigError(f"address={address!r}: no Ray cluster answers there ({err}); start one with "
                          "`ray start --head` and pass the address it prints.") from None
    try:
        yield ray
    finally:
        ray.shutdown()
