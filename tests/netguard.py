"""Refuse every network connection that does not stay on this machine.

Installed in the test process by conftest.py and in every subprocess the tests
start (through ``netguard_site/sitecustomize.py`` on PYTHONPATH). A blocked
attempt raises in the caller *and* is recorded, because libraries such as
huggingface_hub swallow connection errors and carry on; conftest fails any test
that left a record behind.
"""

from __future__ import annotations

import ipaddress
import os
import socket

LOG_ENV = "CINESCENE_NETGUARD_LOG"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
attempts: list[str] = []


class NetworkBlocked(OSError):
    pass


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]").split("%")[0]
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_numeric(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host.decode() if isinstance(host, bytes) else host).strip("[]"))
    except ValueError:
        return False
    return True


def _record(what: str) -> None:
    attempts.append(what)
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {what}\n")


def _check(address: object) -> None:
    if isinstance(address, (tuple, list)) and address:
        host = address[0]
    elif isinstance(address, (str, bytes)):  # AF_UNIX path
        return
    else:
        host = address
    if not _is_local(host):
        _record(f"connect {address!r}")
        raise NetworkBlocked(f"network access blocked in tests: {address!r}")


def install() -> None:
    if getattr(socket, "_cinescene_guard", False):
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        # Numeric addresses need no DNS; connect() judges them.
        if not _is_local(host) and not _is_numeric(host):
            _record(f"resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"name resolution blocked in tests: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket._cinescene_guard = True  # type: ignore[attr-defined]
