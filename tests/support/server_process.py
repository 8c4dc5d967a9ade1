"""Small helpers shared by the fixtures that run a test server as a subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log_path: Path, lines: int = 40) -> str:
    """Last lines of a server's log file, or "" when it cannot be read."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_module_server(module: str, *arguments: str) -> tuple[subprocess.Popen, str]:
    """`python -m module arguments` from the repository, in a process of its own (so it never
    competes with the client it serves for the GIL), and the first line it prints: its URL."""
    server = subprocess.Popen([sys.executable, "-m", module, *arguments], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()
