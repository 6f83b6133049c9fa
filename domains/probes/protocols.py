"""The three conversations: what to say to an SMTP, IMAP or POP3 server and how to read what it
answers, over a `domains.net.LineChannel`.

Each dialect object serves one connection (IMAP needs a tag counter). They only ever read the
greeting, ask for capabilities, ask for TLS and say goodbye; SMTP's may also ask whether the
server relays (MAIL FROM / RCPT TO, then RSET). Nothing here logs in or sends a message.
"""

import re

from domains.net import LineChannel
from domains.probes.results import Service

MAX_REPLY_LINES = 200  # a multi-line reply longer than this is cut (the rest is not read)
RELAY_ADDRESS = "mailsec-probe@example.invalid"  # RFC 2606: can never be delivered anywhere
SMTP_REPLY = re.compile(r"^(\d{3})([ -])?(.*)$")


class ProtocolError(Exception):
    """The server said something that is not its protocol's."""


class Smtp:
    service_names = ("smtp", "submission")

    def __init__(self, channel: LineChannel, timeout: float, helo_name: str):
        self.channel, self.timeout, self.helo_name = channel, timeout, helo_name

    def reply(self, timeout: float | None = None) -> tuple[int, list[str]]:
        """(code, lines of text): RFC 5321 4.2, continuation lines "250-...", last "250 ..."."""
        lines = []
        while len(lines) < MAX_REPLY_LINES:
            line = self.channel.read_line(timeout or self.timeout)
            match = SMTP_REPLY.match(line)
            if not match:
                raise ProtocolError(f"not an SMTP reply: {line[:200]!r}")
            lines.append(match.group(3).strip())
            if match.group(2) != "-":
                return int(match.group(1)), lines
        raise ProtocolError(f"an SMTP reply of more than {MAX_REPLY_LINES} lines")

    def command(self, text: str) -> tuple[int, list[str]]:
        self.channel.send_line(text, self.timeout)
        return self.reply()

    def greeting(self, timeout: float) -> tuple[bool, str]:
        code, lines = self.reply(timeout)
        return code == 220, f"{code} {lines[0]}".strip()

    ehlo_refused = ""  # EHLO's refusal, when the server only speaks HELO

    def capabilities(self) -> list[str]:
        """EHLO's extensions. A server that refuses EHLO is asked HELO (RFC 5321 4.1.4): then
        it has no extensions at all, so no STARTTLS and no AUTH."""
        code, lines = self.command(f"EHLO {self.helo_name}")
        if code != 250:
            self.ehlo_refused = f"{code} {' '.join(lines)}".strip()[:200]
            helo, answer = self.command(f"HELO {self.helo_name}")
            if helo != 250:
                said = f"{helo} {' '.join(answer)}".strip()[:200]
                raise ProtocolError(f"EHLO answered {self.ehlo_refused}, HELO answered {said}")
            self.ehlo_line = answer[0] if answer else ""
            return []
        self.ehlo_line = lines[0]
        return lines[1:]

    @staticmethod
    def offers_tls(capabilities: list[str]) -> bool:
        return any(c.split(" ")[0].upper() == "STARTTLS" for c in capabilities)

    def request_tls(self) -> tuple[bool, str]:
        code, lines = self.command("STARTTLS")
        return code == 220, f"{code} {' '.join(lines)}".strip()

    @staticmethod
    def plaintext_login(capabilities: list[str]) -> str:
        """Why a password could be sent now ("" when it could not): AUTH is advertised."""
        auth = [c for c in capabilities if re.match(r"(?i)^AUTH[ =]", c)]
        return f"EHLO before TLS lists {auth[0]}" if auth else ""

    def relay(self) -> tuple[bool | None, str]:
        """(open relay?, evidence): MAIL FROM and RCPT TO of a never-deliverable address.
        None when the server would not even take the sender (nothing could be learnt)."""
        code, lines = self.command(f"MAIL FROM:<{RELAY_ADDRESS}>")
        said = f"MAIL FROM:<{RELAY_ADDRESS}> answered {code} {' '.join(lines)}".strip()
        if code // 100 != 2:
            self.command("RSET")
            return (False if code // 100 == 5 else None), said
        code, lines = self.command(f"RCPT TO:<{RELAY_ADDRESS}>")
        said = f"RCPT TO:<{RELAY_ADDRESS}> answered {code} {' '.join(lines)}".strip()
        self.command("RSET")
        return code // 100 == 2, said

    def quit(self) -> None:
        self.command("QUIT")


class Imap:
    def __init__(self, channel: LineChannel, timeout: float, helo_name: str = ""):
        self.channel, self.timeout = channel, timeout
        self.tags = 0
        self.greeting_capabilities: list[str] = []

    def greeting(self, timeout: float) -> tuple[bool, str]:
        line = self.channel.read_line(timeout)
        ok = bool(re.match(r"(?i)^\* (OK|PREAUTH)\b", line))
        return ok, line

    def command(self, text: str) -> tuple[str, list[str]]:
        """(tagged status line, untagged lines)."""
        self.tags += 1
        tag = f"m{self.tags}"
        self.channel.send_line(f"{tag} {text}", self.timeout)
        untagged = []
        while len(untagged) < MAX_REPLY_LINES:
            line = self.channel.read_line(self.timeout)
            if line.startswith(f"{tag} "):
                return line[len(tag) + 1 :], untagged
            untagged.append(line)
        raise ProtocolError(f"no end to the answer to {text} after {MAX_REPLY_LINES} lines")

    def capabilities(self) -> list[str]:
        status, lines = self.command("CAPABILITY")
        found = []
        for line in lines:
            if line.upper().startswith("* CAPABILITY "):
                found += line.split()[2:]
        return found if status.upper().startswith("OK") else []

    @staticmethod
    def offers_tls(capabilities: list[str]) -> bool:
        return "STARTTLS" in (c.upper() for c in capabilities)

    def request_tls(self) -> tuple[bool, str]:
        status, _ = self.command("STARTTLS")
        return status.upper().startswith("OK"), status

    @staticmethod
    def plaintext_login(capabilities: list[str]) -> str:
        """RFC 9051 6.2.3: LOGINDISABLED is how a server says it refuses LOGIN before TLS."""
        if "LOGINDISABLED" in (c.upper() for c in capabilities):
            return ""
        return "CAPABILITY before TLS lacks LOGINDISABLED: LOGIN is accepted in the clear"

    def quit(self) -> None:
        self.command("LOGOUT")


class Pop3:
    def __init__(self, channel: LineChannel, timeout: float, helo_name: str = ""):
        self.channel, self.timeout = channel, timeout

    def greeting(self, timeout: float) -> tuple[bool, str]:
        line = self.channel.read_line(timeout)
        return line.startswith("+OK"), line

    def command(self, text: str) -> str:
        self.channel.send_line(text, self.timeout)
        return self.channel.read_line(self.timeout)

    def capabilities(self) -> list[str]:
        """RFC 2449 CAPA: "+OK", one capability a line, then "."; none when refused."""
        if not self.command("CAPA").startswith("+OK"):
            return []
        found = []
        while len(found) < MAX_REPLY_LINES:
            line = self.channel.read_line(self.timeout)
            if line == ".":
                return found
            found.append(line.strip())
        raise ProtocolError(f"CAPA answered more than {MAX_REPLY_LINES} lines")

    @staticmethod
    def offers_tls(capabilities: list[str]) -> bool:
        return any(c.split(" ")[0].upper() == "STLS" for c in capabilities)

    def request_tls(self) -> tuple[bool, str]:
        line = self.command("STLS")
        return line.startswith("+OK"), line

    @staticmethod
    def plaintext_login(capabilities: list[str]) -> str:
        if any(c.split(" ")[0].upper() == "USER" for c in capabilities):
            return "CAPA before TLS lists USER: the password is accepted in the clear"
        return ""

    def quit(self) -> None:
        self.command("QUIT")


DIALECTS = {
    Service.SMTP: Smtp,
    Service.SUBMISSION: Smtp,
    Service.IMAP: Imap,
    Service.POP3: Pop3,
}
