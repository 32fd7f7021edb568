"""A small real SMTP server on a free local port that keeps the raw bytes of what it gets:
every read from the socket (to see which commands travelled together), every message as
sent, and per recipient an answer to give at RCPT instead of 250. It may offer PIPELINING,
and may close a session after a number of messages (as a server going away does).

    with SmtpPeer(pipelining=True) as peer:
        peer.refuse["bad@example.test"] = "550 5.1.1 No such user"
        ...send through 127.0.0.1:peer.port...
        assert peer.messages[0].startswith(b"From: ")
"""

import asyncio
import threading

from tests.smtp import free_port


class SmtpPeer:
    def __init__(self, pipelining: bool = False, close_after: int | None = None):
        self.port = free_port()
        self.pipelining = pipelining
        self.close_after = close_after  # messages per session; then 421 and the session ends
        self.refuse: dict[str, str] = {}
        self.reads: list[bytes] = []
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.sessions = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "SmtpPeer":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Session(self), "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()


class _Session(asyncio.Protocol):
    def __init__(self, peer: SmtpPeer):
        self.peer = peer
        self.buffer = b""
        self.in_data = False
        self.sender, self.recipients, self.delivered = "", [], 0
        self.quitting = False

    def connection_made(self, transport):
        self.transport = transport
        self.peer.sessions += 1
        transport.write(b"220 peer ESMTP\r\n")

    def data_received(self, data):
        self.peer.reads.append(data)
        self.buffer += data
        replies = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                content = self.buffer[:end].replace(b"\r\n..", b"\r\n.")
                self.buffer, self.in_data = self.buffer[end + 5 :], False
                self.peer.messages.append(content + b"\r\n")
                self.peer.envelopes.append((self.sender, self.recipients))
                self.delivered += 1
                replies.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end].decode(), self.buffer[end + 2 :]
            if line[:4].upper() == "MAIL" and self.delivered == self.peer.close_after:
                replies.append(b"421 4.3.2 Closing the session\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()  # once the replies are written
                return
            replies.append(self.answer(line))
        if replies:
            self.transport.write(b"".join(replies))
        if self.quitting:
            self.transport.close()

    def answer(self, line: str) -> bytes:
        verb = line[:4].upper()
        if verb == "EHLO":
            offers = ["peer", "SIZE 10240000"] + (["PIPELINING"] if self.peer.pipelining else [])
            lines = [f"250-{offer}" for offer in offers[:-1]] + [f"250 {offers[-1]}"]
            return ("\r\n".join(lines) + "\r\n").encode()
        if verb == "MAIL":
            self.sender, self.recipients = line.split(":", 1)[1].split()[0].strip("<>"), []
            return b"250 Ok\r\n"
        if verb == "RCPT":
            address = line.split(":", 1)[1].strip().strip("<>")
            if address in self.peer.refuse:
                return f"{self.peer.refuse[address]}\r\n".encode()
            self.recipients.append(address)
            return b"250 Ok\r\n"
        if verb == "DATA":
            if not self.recipients:
                return b"554 5.5.1 No valid recipients\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == "RSET":
            self.sender, self.recipients = "", []
            return b"250 Ok\r\n"
        if verb == "QUIT":
            self.quitting = True
            return b"221 Bye\r\n"
        return b"250 Ok\r\n"  # HELO, NOOP
