"""Nothing the local stack runs listens beyond loopback unless asked to."""

from __future__ import annotations

import ipaddress

import psutil

from devstack.stack import ETL, Replica
from tests.support.stack import gateway_tier, make_replicas, running


def _listening(pid: int) -> set[tuple[str, int]]:
    """Return the TCP addresses a process and its children listen on."""
    root = psutil.Process(pid)
    found = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found |= {c.laddr[:2] for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def _is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    mapped = getattr(address, "ipv4_mapped", None)  # gRPC listens on ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_every_internal_listener_is_on_loopback(tmp_path):
    replicas = [*make_replicas(2), *gateway_tier(2, 1), Replica(ETL, "etl-scheduler", 0, 0)]
    with running(tmp_path, replicas, {}) as stack:
        listening = {name: _listening(p.pid) for name, p in stack.processes.items()}

    assert {"docstore", "docstore-pg", "state-redis", "gateway-1", "etl-scheduler"} <= set(
        listening
    )
    servers = [name for name, found in listening.items() if "service" in name]
    assert all(listening[name] for name in servers), listening  # HTTP and gRPC both seen
    exposed = {
        name: sorted((ip, port) for ip, port in found if not _is_loopback(ip))
        for name, found in listening.items()
    }
    assert {name: found for name, found in exposed.items() if found} == {}
