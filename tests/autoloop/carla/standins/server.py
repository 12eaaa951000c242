"""A stand-in for a CARLA server's process, for testing how autoloop handles processes: it binds the ports a server
with ``-carla-rpc-port=P`` binds (P, P+1, P+2) and accepts and closes connections on them. It does not speak CARLA's
protocol.

    server.py --port P --pid-dir DIR [--startup-s S] [--never-listen] [--exit-after-s T --exit-code C]
              [--child] [--ignore-sigterm]

``--pid-dir`` gets ``server-P.pid`` (so that an evaluator stand-in can kill "its server"); ``--child`` starts a
grandchild in the same process group (as ``CarlaUE4.sh`` starts the engine binary), whose argv holds the pid dir.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-dir", type=Path, required=True)
    parser.add_argument("--startup-s", type=float, default=0.0, help="wait this long before listening")
    parser.add_argument("--never-listen", action="store_true", help="run, but never accept connections")
    parser.add_argument("--exit-after-s", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--child", action="store_true", help="start a grandchild in this process group")
    parser.add_argument("--ignore-sigterm", action="store_true")
    args = parser.parse_args()

    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args.pid_dir.mkdir(parents=True, exist_ok=True)
    (args.pid_dir / f"server-{args.port}.pid").write_text(str(os.getpid()))
    if args.child:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", str(args.pid_dir)])
    print(f"stand-in server starting on port {args.port}", flush=True)
    deadline = None if args.exit_after_s is None else time.monotonic() + args.exit_after_s
    time.sleep(args.startup_s)
    if args.never_listen:
        print("stand-in server: not listening", flush=True)
        _sleep_until(deadline, args.exit_code)
    selector = selectors.DefaultSelector()
    for port in (args.port, args.port + 1, args.port + 2):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        selector.register(listener, selectors.EVENT_READ)
    print(f"stand-in server listening on {args.port}..{args.port + 2}", flush=True)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            print(f"stand-in server exits with code {args.exit_code}", flush=True)
            sys.exit(args.exit_code)
        for key, _ in selector.select(timeout=0.05):
            connection, _ = key.fileobj.accept()  # type: ignore[union-attr]
            connection.close()


def _sleep_until(deadline: float | None, code: int) -> None:
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"stand-in server exits with code {code}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
