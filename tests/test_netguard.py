"""The offline guard itself: if it silently let traffic through, every other test would prove nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import netguard
from conftest import subprocess_env


@pytest.mark.allow_blocked_network
def test_outside_connections_are_blocked_and_recorded():
    before = len(netguard.attempts)
    with pytest.raises(netguard.NetworkBlocked), socket.socket() as sock:
        sock.connect(("203.0.113.7", 443))
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("huggingface.co", 443)
    assert len(netguard.attempts) == before + 2


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


@pytest.mark.allow_blocked_network
def test_subprocesses_are_guarded_too(tmp_path):
    log = tmp_path / "log"
    code = "import socket\ntry:\n    socket.create_connection(('203.0.113.7', 80), timeout=2)\nexcept OSError as e:\n    print(type(e).__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(**{netguard.LOG_ENV: str(log)}),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "NetworkBlocked"
    assert "203.0.113.7" in log.read_text()
