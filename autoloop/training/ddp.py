"""The data-parallel training entry point: the same command trains on one process or on N (per node).

On a cluster::

    torchrun --nproc_per_node 8 -m autoloop.training.ddp --home H --dataset H/datasets/<digest>.json \\
        --checkpoints H/checkpoints/run-1 --output H/checkpoints/run-1/driver.pt [--config my.yaml]

Alone: ``python -m autoloop.training.ddp ...`` (one process), or ``--nproc N`` to spawn N local processes without
``torchrun`` (gloo on CPUs). Killed and started again with the same ``--checkpoints``, it resumes after the last
finished epoch. Rank 0 writes the trained driver to ``--output``. Each rank streams its share of the snapshot from
the store (:mod:`autoloop.training.stream`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from torch.multiprocessing.spawn import spawn

from autoloop.config import load_config
from autoloop.episodes import EpisodeStore, load_snapshot
from autoloop.paths import Paths
from autoloop.training.bc import train_bc
from autoloop.training.distributed import process_group
from autoloop.training.stream import StreamedSnapshot


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        # (the workers see WORLD_SIZE and train instead of spawning again)
        launch(args.nproc, list(argv) if argv is not None else sys.argv[1:])
        return
    config = load_config(args.config, profile=args.profile)
    paths = Paths(home=Path(args.home))
    with process_group() as topology:
        data = StreamedSnapshot(EpisodeStore(paths.episodes), load_snapshot(Path(args.dataset)),
                                waypoints=config.train.waypoints, bev=config.sim.bev())
        result = train_bc(data, config.train, topology=topology, checkpoint_dir=Path(args.checkpoints))
        output = Path(args.output)
        if topology.is_main:
            result.policy.save(output)
            if args.history:
                Path(args.history).write_text(json.dumps({"samples": result.samples,
                                                          "epochs": [asdict(m) for m in result.history]}))
        elif args.all_ranks:
            result.policy.save(output.with_name(f"{output.stem}.rank{topology.rank}{output.suffix}"))


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run :func:`main` on ``nproc`` local processes (a process group over localhost), as ``torchrun`` would."""
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spawn(_worker, args=(nproc, port, list(argv)), nprocs=nproc, join=True)  # type: ignore[no-untyped-call]


def _worker(rank: int, world_size: int, port: int, argv: list[str]) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    main(argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autoloop.training.ddp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="autoloop home (the episode store is under it)")
    parser.add_argument("--dataset", required=True, help="dataset snapshot manifest")
    parser.add_argument("--checkpoints", required=True, help="folder of the per-epoch checkpoint (resumed from)")
    parser.add_argument("--output", required=True, help="where rank 0 writes the trained driver")
    parser.add_argument("--config", type=Path, default=None, help="experiment YAML (its train section)")
    parser.add_argument("--profile", default=None, help="packaged profile (quick, default)")
    parser.add_argument("--nproc", type=int, default=1, help="spawn this many local processes (without torchrun)")
    parser.add_argument("--history", default=None,
                        help="rank 0 writes the samples and per-epoch losses here (JSON)")
    parser.add_argument("--all-ranks", action="store_true", help="every rank writes its weights (for checks)")
    return parser


if __name__ == "__main__":
    main()
