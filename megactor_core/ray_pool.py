"""Per-item work on a Ray cluster: actors that each load their models once, fed a bounded stream of items.

The commands' ``--ray`` runs their per-item function (measure one clip, turn one video into
clips) in these actors while the calling process stays the only writer of the journal, manifest
and shards, so outputs and resume are those of a local run. Ray is imported only when used.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

INSTALL = 'pip install "ray[data]"'
ITEMS_PER_WORKER = 2  # items in flight or waiting to be taken, per actor: bounds the driver's memory


@dataclass(frozen=True)
class RayCluster:
    """Where and how wide to run.

    ``address`` is ``ray.init``'s (``auto``, ``host:6379``, ``ray://host:10001``; None: the
    cluster of ``RAY_ADDRESS`` or of ``ray start`` on this machine, else a new local one).
    ``workers`` actors (0: one per GPU share when workers get GPUs, else one per CPU of the
    cluster); ``gpus_per_worker`` (None: 1 when the cluster has GPUs, else 0).
    """

    address: str | None = None
    workers: int = 0
    gpus_per_worker: float | None = None

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"Ray workers must be 0 (one per CPU or GPU) or more, got {self.workers}")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ValueError(f"GPUs per worker must be 0 or more, got {self.gpus_per_worker}")


def ray_installed() -> bool:
    """Whether Ray can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def missing_ray_message() -> str:
    return f"--ray needs Ray, which is not installed in this Python: {INSTALL}"


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--gpus-per-worker`` (the command has its own ``--workers``)."""
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run the per-item work on a Ray cluster (ray.init's address: auto, host:6379, "
                             "ray://host:10001; none: RAY_ADDRESS's cluster, or a new one on this machine); model "
                             f"files and inputs must be at these paths on every node. Needs {INSTALL}")
    parser.add_argument("--gpus-per-worker", type=float,
                        help="with --ray: GPUs each worker asks for (default 1 when the cluster has GPUs, else 0; "
                             "0.5 puts two workers on a GPU)")


def ray_cluster(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RayCluster | None:
    """The cluster ``--ray`` asks for, or None; a parser error for Ray options without ``--ray``
    or a ``--ray`` without Ray installed."""
    if args.ray is None:
        if args.gpus_per_worker is not None:
            parser.error("--gpus-per-worker needs --ray")
        return None
    if not ray_installed():
        parser.error(missing_ray_message())
    try:
        return RayCluster(args.ray or None, args.workers, args.gpus_per_worker)
    except ValueError as exc:
        parser.error(str(exc))


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(missing_ray_message()) from None
    return ray


def ray_map(cluster: RayCluster, worker: type, args: Callable[[str], tuple], items: Sequence[tuple], *,
            ordered: bool) -> Iterator[Any]:
    """``worker(*args(device))(*item)`` for each item, on Ray actors built once each.

    ``device`` is ``"cuda"`` for actors given GPUs (Ray shows each only its own), else ``"cpu"``.
    Results come in item order when ``ordered``, else as they finish. At most
    :data:`ITEMS_PER_WORKER` items per actor are in flight or finished but not yet taken. The
    actors are ended when the iteration ends, fails or is closed.
    """
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=cluster.address)
    count, gpus = _size(cluster, ray.cluster_resources())
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(worker)
    actors = [remote.remote(*args("cuda" if gpus else "cpu")) for _ in range(min(count, len(items)))]
    idle, running, finished = list(actors), {}, {}
    next_item, next_result = 0, 0
    try:
        while next_result < len(items):
            while idle and next_item < len(items) and len(running) + len(finished) < ITEMS_PER_WORKER * len(actors):
                actor = idle.pop()
                running[actor.__call__.remote(*items[next_item])] = (next_item, actor)
                next_item += 1
            if ordered and next_result in finished:
                yield _result(ray, finished.pop(next_result), items[next_result])
                next_result += 1
                continue
            [ready], _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(ready)
            idle.append(actor)
            if ordered:
                finished[index] = ready
            else:
                yield _result(ray, ready, items[index])
                next_result += 1
    finally:
        for actor in actors:
            ray.kill(actor)


def _result(ray: Any, ref: Any, item: tuple) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayActorError as exc:
        raise RuntimeError(f"a Ray worker could not start or died while working on {item}: {exc}\nEvery node reads "
                           "the model files and inputs at the paths given here: put them on storage all nodes "
                           "mount at the same path") from None
    except ray.exceptions.RayTaskError as exc:
        raise RuntimeError(f"a Ray worker failed on {item}: {exc}") from None


def _size(cluster: RayCluster, resources: dict[str, float]) -> tuple[int, float]:
    """How many actors, with how many GPUs each, for the cluster's ``resources``."""
    cluster_gpus, cpus = resources.get("GPU", 0.0), int(resources.get("CPU", 0))
    gpus = cluster.gpus_per_worker if cluster.gpus_per_worker is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    fit = int(cluster_gpus // gpus) if gpus else cpus
    count = cluster.workers or max(1, fit)
    if count > min(fit, cpus):
        log.warning("%d Ray workers asked, but the cluster has %d CPUs and %g GPUs now: the others wait for the "
                    "autoscaler or for free resources", count, cpus, cluster_gpus)
    return count, gpus
