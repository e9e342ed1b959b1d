"""A real Redis primary + replica pair on this machine, and the failover tests drive on it.

Two private redis-server processes (no persistence: a failover is the only way anything
survives the primary). The replica follows the primary through a `TcpProxy` (the *link*),
so a test can cut replication at the moment it chooses: writes the primary takes after the
cut never reach the replica, as with a replica that lags when its primary dies. Connector
processes reach Redis through a second proxy (the *front*, standing in for the platform's
DNS name or Sentinel), which a failover switches to the promoted replica, closing every
connection it carried so clients reconnect to the new primary.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.procs import Proc, _spawn, free_port, wait_until

#: Bytes read from one side before they are written to the other.
CHUNK = 65536


class TcpProxy:
    """Forwards TCP connections on a local port to a target port; switchable and cuttable."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.cut = False
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                if self.cut:
                    client.close()  # refused, as a dead link refuses
                    continue
                target = self.target
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):  # no Nagle: WAIT's acks would wait on delayed ACKs
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                while self.stalled.is_set():  # held back, the connection still open
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close_all(self) -> None:
        """Close every connection carried now (both sides see the connection die)."""
        with self._lock:
            socks = list(self._sockets)
        self._drop(*socks)

    def sever(self) -> None:
        """Close every connection and refuse new ones: the link is down."""
        with self._lock:
            self.cut = True
        self.close_all()

    def stall(self, on: bool = True) -> None:
        """Hold every byte back while the connections stay open (a lagging link), or resume."""
        if on:
            self.stalled.set()
        else:
            self.stalled.clear()

    def mend(self) -> None:
        """Accept connections again: the link is back."""
        with self._lock:
            self.cut = False

    def switch(self, target: int) -> None:
        """New connections go to `target`; current ones are closed so clients reconnect."""
        with self._lock:
            self.target = target
        self.close_all()

    def close(self) -> None:
        """Stop listening and close everything."""
        self._closed.set()
        self._server.close()
        self.close_all()


def start_plain_redis(port: int, data_dir: Path, *extra: str, name: str = "redis") -> Proc:
    """A private redis-server without persistence on `port`, answering PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = _spawn(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--save", "", "--appendonly", "no", *extra,
        ],
        None,
        name,
    )
    proc.url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis(port=port, socket_timeout=1)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    if not wait_until(up, 10) or not proc.alive():
        raise RuntimeError(f"redis-server on {port} did not start:\n{proc.log()}")
    client.close()
    return proc


@dataclass
class Pair:
    """A primary, its replica (through `link`), and the `front` proxy clients use."""

    primary: Proc
    replica: Proc
    primary_port: int
    replica_port: int
    link: TcpProxy
    front: TcpProxy
    clients: list[redis.Redis] = field(default_factory=list)

    @property
    def url(self) -> str:
        """What connector processes use as REDIS_URL."""
        return f"redis://127.0.0.1:{self.front.port}/0"

    def client(self, port: int) -> redis.Redis:
        """A direct client on one server (not through the front)."""
        made = redis.Redis(port=port, socket_timeout=5, decode_responses=True)
        self.clients.append(made)
        return made

    def in_sync(self) -> bool:
        """The replica is linked and has every write the primary took."""
        p = self.client(self.primary_port).info("replication")
        r = self.client(self.replica_port).info("replication")
        return (
            r.get("master_link_status") == "up"
            and int(p.get("connected_slaves", 0)) >= 1
            and int(r.get("slave_repl_offset", -1)) == int(p.get("master_repl_offset", -2))
        )

    def cut_link(self) -> None:
        """Replication stops here: the primary's later writes exist only on the primary."""
        self.link.sever()

    def mend_link(self) -> None:
        """Replication resumes: the replica reconnects and catches up."""
        self.link.mend()

    def promote_replica(self) -> None:
        """Fail over to the (lagging) replica, as Sentinel or a hosted Redis would.

        The replica becomes the primary, clients are switched to it, and the old primary
        rejoins as its replica: it resynchronises from the new primary, so every write the
        new primary never saw is gone for good.
        """
        new = self.client(self.replica_port)
        new.execute_command("REPLICAOF", "NO", "ONE")
        self.front.switch(self.replica_port)
        old = self.client(self.primary_port)
        old.execute_command("REPLICAOF", "127.0.0.1", str(self.replica_port))
        assert wait_until(
            lambda: int(new.info("replication").get("connected_slaves", 0)) >= 1, 20
        ), "the old primary did not rejoin as a replica"

    def stop(self) -> None:
        """Stop both servers and both proxies."""
        for made in self.clients:
            made.close()
        self.front.close()
        self.link.close()
        self.primary.stop()
        self.replica.stop()


def start_pair(data_dir: Path) -> Pair:
    """A primary and a replica in sync, the replica following through a cuttable link."""
    primary_port, replica_port = free_port(), free_port()
    primary = start_plain_redis(primary_port, data_dir / "primary", name="redis-primary")
    link = TcpProxy(primary_port)
    replica = start_plain_redis(
        replica_port,
        data_dir / "replica",
        "--replicaof", "127.0.0.1", str(link.port),
        # A replica that has lost its primary answers reads with what it has (the default).
        "--replica-serve-stale-data", "yes",
        name="redis-replica",
    )
    pair = Pair(primary, replica, primary_port, replica_port, link, TcpProxy(primary_port))
    if not wait_until(pair.in_sync, 20):
        pair.stop()
        raise RuntimeError("the replica did not synchronise")
    return pair
