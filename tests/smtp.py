"""A real SMTP server (aiosmtpd) on a free local port, keeping what it accepts. Tests read
the mail it received, parsed; the crash test may hold a transaction before accepting."""

import email
import email.policy
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """`pause_before(n)`: the n-th message (counting from 1) waits, before its DATA is
    accepted, until `resume()`; `paused` is set while one waits."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.pause_at: int | None = None
        self.paused = threading.Event()
        self.release = threading.Event()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    def pause_before(self, number: int) -> None:
        self.pause_at = number
        self.paused.clear()
        self.release.clear()

    def resume(self) -> None:
        self.pause_at = None
        self.release.set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            number = len(self.messages) + 1
        if self.pause_at is not None and number == self.pause_at:
            # Before DATA: a client killed now never delivered this message.
            self.paused.set()
            await server.loop.run_in_executor(None, self.release.wait, 30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]
