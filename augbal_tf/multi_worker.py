"""TF_CONFIG for `--distribution_strategy=multi_worker`, and loopback ports for local clusters.

MultiWorkerMirroredStrategy reads the cluster and this process's task from the
TF_CONFIG environment variable; every task gets the same `cluster` and its own
`task`. Worker 0 is the chief (there is no separate "chief" task here).
"""

import json
import socket


def tf_config(workers: list[str], index: int) -> str:
    """The TF_CONFIG value of worker `index` in a cluster of `workers` ("host:port" each).

    Raises:
      ValueError: if `workers` is empty, an address lacks a port, or `index` is out of range.
    """
    if not workers:
        raise ValueError("workers is empty; give one 'host:port' per worker")
    for address in workers:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"worker address {address!r} is not 'host:port'")
    if not 0 <= index < len(workers):
        raise ValueError(f"index={index} is not a worker of a {len(workers)}-worker cluster; "
                         f"allowed: 0..{len(workers) - 1}")
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


def free_loopback_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago (for local test clusters).

    The ports are held open together while chosen, so they differ; another
    process may still take one before the workers bind it (rare; rerun).
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
