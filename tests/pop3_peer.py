"""A tiny real POP3 server on loopback (asyncio, in a thread), for what dovecot cannot be made
to do: leave out UIDL, offer only APOP or only SASL PLAIN, have no CAPA, understate sizes. A
test peer, not production code: plaintext only (the tests explicitly allow plaintext for it),
one mailbox.

    with Pop3Peer(messages=[b"..."], uidl=False) as peer:
        ... connect to 127.0.0.1:peer.port as peer.user / peer.password ...
        peer.commands   # every command received, the secrets masked
        peer.messages   # what is left after the sessions that ended with QUIT
"""

import asyncio
import base64
import hashlib
import threading
import uuid

TIMESTAMP = b"<1896.697170952@peer.test>"


class Pop3Peer:
    def __init__(
        self,
        messages=(),
        *,
        user: str = "dmarc@peer.test",
        password: str | None = None,
        uidl: bool = True,
        user_pass: bool = True,
        sasl_plain: bool = False,
        apop: bool = False,
        capa: bool = True,
        understate: bool = False,
    ):
        # (unique id, message): ids stay with their message, as RFC 1939 7 wants
        self.stored = [(f"peer-{n}", crlf(m)) for n, m in enumerate(messages, 1)]
        self.user, self.password = user, password or uuid.uuid4().hex
        self.uidl, self.user_pass, self.sasl_plain = uidl, user_pass, sasl_plain
        self.apop, self.capa = apop, capa
        self.understate = understate  # LIST says every message is 100 octets
        self.commands: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def messages(self) -> list[bytes]:
        return [message for _, message in self.stored]

    def __enter__(self) -> "Pop3Peer":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(5)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    # --- one session -------------------------------------------------------------------------

    async def _session(self, reader, writer) -> None:
        state = {"user": None, "in": False, "deleted": set()}
        greeting = b"+OK peer ready" + (b" " + TIMESTAMP if self.apop else b"")
        writer.write(greeting + b"\r\n")
        try:
            while line := await reader.readline():
                command, _, argument = line.decode("utf-8", "replace").strip().partition(" ")
                command = command.upper()
                self._record(command, argument)
                answer = self._answer(command, argument, state)
                writer.write(answer)
                await writer.drain()
                if command == "QUIT":
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _record(self, command: str, argument: str) -> None:
        if command in ("PASS", "APOP", "AUTH"):
            argument = "********"
        self.commands.append(f"{command} {argument}".strip())

    def _answer(self, command: str, argument: str, state: dict) -> bytes:
        if command == "QUIT":
            if state["in"]:
                self.stored = [
                    item for n, item in enumerate(self.stored, 1) if n not in state["deleted"]
                ]
            return b"+OK bye\r\n"
        if not state["in"]:
            return self._authorization(command, argument, state)
        return self._transaction(command, argument, state)

    def _authorization(self, command: str, argument: str, state: dict) -> bytes:
        if command == "CAPA" and self.capa:
            lines = [b"TOP"]
            lines += [b"UIDL"] if self.uidl else []
            lines += [b"USER"] if self.user_pass else []
            lines += [b"SASL PLAIN"] if self.sasl_plain else []
            return multi(b"+OK capabilities", lines)
        if command == "USER" and self.user_pass:
            state["user"] = argument
            return b"+OK\r\n"
        if command == "PASS" and self.user_pass and state["user"]:
            return self._login(state, state["user"] == self.user and argument == self.password)
        if command == "APOP" and self.apop:
            name, _, digest = argument.partition(" ")
            expected = hashlib.md5(TIMESTAMP + self.password.encode()).hexdigest()  # noqa: S324
            return self._login(state, name == self.user and digest == expected)
        if command == "AUTH" and self.sasl_plain and argument.upper().startswith("PLAIN "):
            token = base64.b64decode(argument.split(" ", 1)[1])
            return self._login(state, token == f"\0{self.user}\0{self.password}".encode())
        return b"-ERR unknown command\r\n"

    @staticmethod
    def _login(state: dict, ok: bool) -> bytes:
        if not ok:
            return b"-ERR [AUTH] Authentication failed.\r\n"
        state["in"] = True
        return b"+OK logged in\r\n"

    def _transaction(self, command: str, argument: str, state: dict) -> bytes:
        live = {n: item for n, item in enumerate(self.stored, 1) if n not in state["deleted"]}
        number = int(argument.split()[0]) if argument.split()[:1] and argument[0].isdigit() else 0
        if command == "STAT":
            return b"+OK %d %d\r\n" % (len(live), sum(len(m) for _, m in live.values()))
        if command == "LIST":
            sizes = {n: 100 if self.understate else len(m) for n, (_, m) in live.items()}
            return multi(b"+OK", [b"%d %d" % item for item in sizes.items()])
        if command == "UIDL" and self.uidl:
            return multi(b"+OK", [f"{n} {uid}".encode() for n, (uid, _) in live.items()])
        if command in ("RETR", "TOP") and number in live:
            message = live[number][1]
            if command == "TOP":
                message = message.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            return multi(b"+OK", message.removesuffix(b"\r\n").split(b"\r\n"))
        if command == "DELE" and number in live:
            state["deleted"].add(number)
            return b"+OK marked\r\n"
        if command == "NOOP":
            return b"+OK\r\n"
        return b"-ERR unknown command\r\n"


def crlf(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def multi(first: bytes, lines: list[bytes]) -> bytes:
    """A multi-line answer, dot-stuffed (RFC 1939 3)."""
    body = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return first + b"\r\n" + body + b".\r\n"
