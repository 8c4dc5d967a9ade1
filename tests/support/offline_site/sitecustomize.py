"""Put on PYTHONPATH, this makes a Python process (and every Python it starts) refuse the network.

Loopback and Unix sockets still work (kernels and local servers use them); reaching or resolving
any other host raises OSError naming it. The examples tests run their kernels with it, so a
notebook that quietly needs the internet fails there instead of on a reader's machine.
"""

import ipaddress
import socket
import sys

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "", None}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse_network(event: str, args) -> None:
    if event == "socket.getaddrinfo" and not _is_local(args[0]):
        raise OSError(f"network access is off in this process: tried to resolve {args[0]!r}")
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise OSError(f"network access is off in this process: tried to connect to {address!r}")


sys.addaudithook(_refuse_network)
