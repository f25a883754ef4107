"""A TCP proxy of a test's own on loopback, in front of a real server, that can stop forwarding while it keeps
every connection open: the server as a client sees it when it hangs, or when the link to it goes dead behind a
box that still acknowledges (no error, no reset, no answer)."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FreezingProxy", "freezing_proxy"]


class FreezingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """Stop forwarding either way; connections stay open, bytes sent meanwhile wait unread."""
        self._forwarding.clear()

    def thaw(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._closed.set()
        self._forwarding.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                try:
                    sock.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                self._forwarding.wait()
                ready, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in ready:
                    if not self._forwarding.is_set():
                        break   # frozen between select and read: what came stays unread
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


@contextmanager
def freezing_proxy(host: str, port: int) -> Iterator[FreezingProxy]:
    proxy = FreezingProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
