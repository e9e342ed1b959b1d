"""One Redis connection per thread for the commands every intake request sends.

A webhook costs one Redis round trip, and redis-py's client layers around it cost nearly as
much again: taking a connection from the pool (a lock and a poll(2) to check the socket is
clean), the retry wrapper, event dispatch, metric hooks, giving it back. A connection the
thread keeps skips all of them (bench/README.md has the figures).

So the intake's own commands go over a connection the serving thread keeps for its life:
a redis-py `Connection` made from the client's pool settings (TLS, password, database,
timeouts, health checks and the hiredis parser all come with it), never shared between
threads. Everything else keeps using the pool. A gunicorn process therefore holds about one
connection per thread plus the few the pool needs for the rest (admin, status, jobs).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class ThreadConnections:
    """Commands sent over the calling thread's own connection (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self._local = threading.local()

    def _connection(self) -> Any:  # a redis.connection.Connection (untyped in redis-py)
        local = self._local
        conn = getattr(local, "conn", None)
        pid = os.getpid()
        if conn is None or local.pid != pid:  # a forked child never reuses its parent's socket
            conn = self.pool.connection_class(**self.pool.connection_kwargs)
            local.conn, local.pid = conn, pid
        return conn

    def execute(self, *args: Any) -> Any:
        """Send one command and return its raw reply; errors are redis-py's own.

        A connection found dead (Redis restarted, failed over, or closed it while idle) is
        replaced and the command sent once more. redis-py's pool finds such a connection
        before using it, with a poll(2) on every checkout; this path finds it by the failed
        send or read instead, so a command Redis ran just before dying mid-reply would run
        again. The intake tolerates that: it is idempotent on the distribution id, and the
        worst case is one recipient counted twice. Timeouts are not retried, and a Redis
        that is down fails at once (503), since the connection itself does not retry.
        """
        conn = self._connection()
        packed = conn.pack_command(*args)
        try:
            conn.send_packed_command(packed)  # health-checked after 30 s idle, like the pool's
            return conn.read_response()
        except redis.ConnectionError:
            # redis-py disconnected it on the error; sending again connects a new one.
            conn.send_packed_command(packed)
            return conn.read_response()

    def run_script(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        """EVALSHA over this thread's connection; the script is loaded if Redis lost it.

        Loaded and run again over that same connection: a creation's `WAIT` confirms only the
        writes of the connection it is sent on, and a Redis that lost its scripts (a restart,
        a failover) is exactly when the write must be confirmed, not waved through.
        """
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self.execute(*command)
        except NoScriptError:
            self.execute("SCRIPT", "LOAD", script.script)
            return self.execute(*command)

    def execute_unretried(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send commands together over this thread's connection, never on a new one.

        For `WAIT` and `WAITAOF`, which confirm only the writes sent over the same
        connection: sent again over a fresh connection they would confirm nothing and still
        answer success. A dead connection therefore raises instead of being replaced.
        """
        conn = self._connection()
        if conn._sock is None:  # redis-py keeps no public "is connected"
            raise redis.ConnectionError("the connection that made the write is gone")
        conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        return [conn.read_response() for _ in commands]

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.disconnect()
            self._local.conn = None
