"""Servers that say nothing, or the wrong thing, for the protocol probes (used by the mail lab,
tests/mailservers.py, and bench/bench_probes.py):

- Tarpit: accepts connections and never sends a byte; counts them, and the most open at once.
- Blackhole: a listener whose backlog is kept full: connection attempts get no answer at all.
- Scripted: a fixed greeting and fixed replies, for what Postfix and dovecot never do.
"""

import contextlib
import socket
import threading

TCP_ESTABLISHED = 1  # tcp_info's first byte: the connection's state (include/net/tcp_states.h)


def still_open(sock: socket.socket) -> bool:
    """Whether the client has not closed its side yet, as the kernel knows it: a FIN moves the
    connection out of ESTABLISHED at once, before any thread of ours has read it."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED
    except OSError:
        return False


class Tarpit:
    """Accepts every connection and never sends a byte; counts connections, and the most open
    at once (`most_open`, counted by the kernel's state of each connection when a new one is
    accepted). Connections are held until the client gives up or the tarpit stops."""

    def __init__(self, address: str, port: int = 25):
        self.address, self.port = address, port
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.create_server((address, port), family=family, backlog=64)
        self.connections = 0
        self.most_open = 0
        self._held: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def open(self) -> int:
        with self._lock:
            return sum(still_open(client) for client in self._held)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._held.add(client)
                now_open = sum(still_open(c) for c in self._held)
                self.most_open = max(self.most_open, now_open)
            threading.Thread(target=self._hold, args=(client,), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        client.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                if not client.recv(4096):
                    break  # the client closed
            except TimeoutError:
                continue
            except OSError:
                break
        with self._lock:
            self._held.discard(client)
        client.close()

    def stop(self) -> None:
        self._stopping.set()
        _close_listener(self.sock)
        self._thread.join(5)


class Scripted:
    """A server that misbehaves the same way on every connection: sends `greeting` (bytes),
    then, for each line it receives, `replies` in turn; when they run out (or with
    `close_after_greeting`) it closes the connection. For the cases Postfix and dovecot never
    produce: a refusal greeting, an endless line, a close before or during the conversation."""

    def __init__(self, address: str, port: int, greeting: bytes, replies=(), *, close=False):
        self.greeting, self.replies, self.close = greeting, list(replies), close
        self.received: list[list[str]] = []  # the lines of each connection, as received
        self.sock = socket.create_server((address, port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(client,), daemon=True).start()

    def _talk(self, client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            try:
                client.sendall(self.greeting)
                if self.close:
                    return
                reader = client.makefile("rb")
                lines = []
                self.received.append(lines)
                for reply in self.replies:
                    line = reader.readline()
                    if not line:
                        return
                    lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
                    client.sendall(reply)
                if line := reader.readline():
                    lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
            except OSError:
                return

    def stop(self) -> None:
        _close_listener(self.sock)
        self._thread.join(5)


def _close_listener(sock: socket.socket) -> None:
    """Stop listening now: a thread blocked in accept() keeps a merely closed socket listening
    until a connection comes; shutdown() wakes it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class Blackhole:
    """A listener that never accepts, its one-slot backlog filled by a connection of its own:
    the kernel then drops new connection attempts (no reset), so they time out."""

    def __init__(self, address: str, port: int = 25):
        self.sock = socket.socket()
        self.sock.bind((address, port))
        self.sock.listen(0)
        self.filler = socket.create_connection((address, port), timeout=1)

    def stop(self) -> None:
        self.filler.close()
        self.sock.close()
