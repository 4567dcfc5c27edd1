#!/usr/bin/env python3
"""A real SMTP server for gazette's end-to-end tests, with faults on demand.

    python3 tests/smtp/server.py --port 0 --spool DIR [options]

It listens on 127.0.0.1, prints one line `READY <port>` on stdout once it accepts connections,
and serves until SIGTERM or SIGINT. Logs go to stderr only: stdout carries nothing but READY.

Every message it accepts becomes, in this order:
  DIR/<n>.eml      the DATA bytes as received (dot-unstuffed, CRLF kept), n = 1, 2, 3...
  DIR/log.jsonl    one JSON line: mail_from, rcpt_tos, received_at, size, message_id, peer, file
The .eml is written to a temporary name and renamed, and the log line is appended after it, so a
reader that follows log.jsonl never sees a half-written message. A log line only ever means 250.

DIR/stats.json always holds the connection counts (now, peak, total, refused) and the number of
messages accepted; it is rewritten whenever one changes, so a test can read it while we run.

Faults, all combinable. "Messages" are counted across the whole server, one for each DATA that
reaches its final dot, whatever becomes of it; the checks run in this order at the final dot:
  --drop-every N      every Nth message: close the connection without any reply. Not recorded.
  --stall-every N     every Nth message: say nothing for --stall-seconds S, then close the
                      connection without a reply. Not recorded: a client that gave up cannot
                      know it was delivered, and a stall that ends in 250 would hide the case
                      that matters (a message the client must retry).
  --tempfail-first N  the first N attempts for each recipient get `451 4.3.0 try again later`,
                      at DATA (default) or at RCPT (--tempfail-at rcpt); attempts are counted per
                      address, case-insensitively.
  --throttle-first N  the first N attempts for each recipient get `421 4.7.0 slow down` at DATA,
                      as a busy provider throttles a sender; counted per address apart from
                      --tempfail-first, and checked before it.
  --throttle-seconds S  every message reaching its final dot in the first S seconds after the
                      first one did (that one included) gets `421 4.7.0 slow down`, as a provider does while it
                      throttles a sender (a negative S: for as long as the server runs). Each
                      such reply is counted in stats.json's "throttled", as are --throttle-first's.
  --throttle SUBSTR   messages to recipients containing SUBSTR always get `421 4.7.0 slow down`
                      at DATA, as a provider that never stops throttling. Repeatable; counted too.
  --reject SUBSTR     recipients containing SUBSTR get `550 5.1.1 <addr>: user unknown` at RCPT
                      (default) or at DATA (--reject-at data). Repeatable.
Also:
  --bounce-later SUBSTR  recipients containing SUBSTR are accepted (250), and then, as a remote
                      mail server does minutes later, a delivery status notification about them
                      (RFC 3464, 5.1.1) is written to the envelope sender: into the Maildir
                      --bounce-maildir DIR (new/, by temporary name and rename), with the
                      envelope sender in To and Delivered-To. Repeatable.
  --auth USER:PASS    AUTH PLAIN/LOGIN required before MAIL (530 otherwise), wrong ones get 535.
                      Without it AUTH is offered and any credentials pass, so a client that
                      always logs in still works.
  --tls-cert/--tls-key  offer STARTTLS with this certificate; --require-tls answers 530 to
                      anything but EHLO/HELO/NOOP/QUIT/RSET/STARTTLS before the handshake;
                      --implicit-tls speaks TLS from the first byte instead (smtps).
  --max-connections N  connections beyond N at once get `421 4.7.0 too many connections` and
                      are closed.
  --no-smtputf8       do not offer SMTPUTF8 (RFC 6531) in the EHLO reply, as many servers do
                      not: a client must not then send an address whose local part is not ASCII.
  --pipelining        offer PIPELINING (RFC 2920) in the EHLO reply. stats.json then counts in
                      "pipelined_mail" each MAIL that arrived with the next command already
                      behind it, which only a client that pipelines sends.
  --inject-after-starttls  send a stray "554" reply in plain text right behind STARTTLS's 220,
                      in the same write, as an attacker on the path would (CVE-2011-0411 class):
                      a client that reads it as a reply after the handshake falls out of step.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import time
import warnings
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

log = logging.getLogger("smtp-test-server")

TEMPFAIL = "451 4.3.0 try again later"
THROTTLE = "421 4.7.0 too much mail from you, slow down"


class Spool:
    """The received messages and the counters, as files a test can read at any time."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.accepted = 0
        self.conn_now = 0
        self.conn_peak = 0
        self.conn_total = 0
        self.conn_refused = 0
        self.pipelined_mail = 0
        self.throttled = 0

    def record(self, envelope: Envelope, peer) -> None:
        raw: bytes = envelope.original_content or b""
        self.accepted += 1
        name = f"{self.accepted}.eml"
        tmp = self.root / f".{name}.tmp"
        tmp.write_bytes(raw)
        os.replace(tmp, self.root / name)
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "received_at": time.time(),
            "size": len(raw),
            "message_id": message_id(raw),
            "peer": format_peer(peer),
            "file": name,
        }
        # One write() of one whole line to an O_APPEND file: readers see whole lines only
        # (the harness still ignores a last line without its newline, to be safe).
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(self.root / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self.write_stats()

    def write_stats(self) -> None:
        stats = {
            "connections_now": self.conn_now,
            "peak_connections": self.conn_peak,
            "connections_total": self.conn_total,
            "refused_connections": self.conn_refused,
            "messages_accepted": self.accepted,
            "pipelined_mail": self.pipelined_mail,
            "throttled": self.throttled,
        }
        tmp = self.root / ".stats.json.tmp"
        tmp.write_text(json.dumps(stats))
        os.replace(tmp, self.root / "stats.json")


def message_id(raw: bytes) -> str | None:
    try:
        value = email.parser.BytesHeaderParser().parsebytes(raw).get("Message-ID")
        return str(value).strip() if value is not None else None
    except Exception:  # a malformed header must not lose the message
        return None


def format_peer(peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class Faults:
    """The decisions: which reply each command gets. Pure bookkeeping, no I/O."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.messages = itertools.count(1)
        self.attempts: dict[str, int] = {}
        self.throttle_attempts: dict[str, int] = {}
        self.first_message: float | None = None

    def rejected(self, address: str) -> bool:
        return any(s in address for s in self.args.reject)

    def tempfail(self, addresses: list[str]) -> bool:
        """Count one attempt for each address; true while any is within its first N."""
        failing = False
        for a in addresses:
            key = a.lower()
            self.attempts[key] = self.attempts.get(key, 0) + 1
            failing |= self.attempts[key] <= self.args.tempfail_first
        return failing


    def throttling_now(self) -> bool:
        """True while the server is within its --throttle-seconds."""
        s = self.args.throttle_seconds
        now = time.monotonic()
        if self.first_message is None:
            self.first_message = now
        return s < 0 or now - self.first_message < s

    def throttle(self, addresses: list[str]) -> bool:
        """Count one attempt for each address; true while any is within its first N throttled."""
        slowed = False
        for a in addresses:
            key = a.lower()
            self.throttle_attempts[key] = self.throttle_attempts.get(key, 0) + 1
            slowed |= self.throttle_attempts[key] <= self.args.throttle_first
        return slowed


class Handler:
    def __init__(self, spool: Spool, faults: Faults):
        self.spool = spool
        self.faults = faults
        self.args = faults.args

    async def handle_EHLO(self, server, session: Session, envelope: Envelope, hostname, responses):
        session.host_name = hostname  # the hook takes over this part of aiosmtpd's EHLO
        if self.args.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session: Session, envelope: Envelope, address, options):
        # The reader's buffer (aiosmtpd's StreamReader) holds what the client sent past this line.
        reader = getattr(server, "_reader", None)
        if reader is not None and len(getattr(reader, "_buffer", b"")) > 0:
            self.spool.pipelined_mail += 1
            self.spool.write_stats()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        if self.args.reject_at == "rcpt" and self.faults.rejected(address):
            return f"550 5.1.1 <{address}>: user unknown"
        if self.args.tempfail_at == "rcpt" and self.faults.tempfail([address]):
            return TEMPFAIL
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        n = next(self.faults.messages)
        a = self.args
        if a.drop_every and n % a.drop_every == 0:
            log.info("message %d from %s: dropping the connection", n, format_peer(session.peer))
            await hang_up(server)
        if a.stall_every and n % a.stall_every == 0:
            log.info("message %d: stalling %ss, then hanging up", n, a.stall_seconds)
            await asyncio.sleep(a.stall_seconds)  # cancelled early if the client leaves first
            await hang_up(server)
        if a.accept_delay:
            await asyncio.sleep(a.accept_delay)  # a slow server: each message answered late
        if a.reject_at == "data":
            bad = [r for r in envelope.rcpt_tos if self.faults.rejected(r)]
            if bad:
                return f"550 5.1.1 <{bad[0]}>: user unknown"
        if (
            (a.throttle_seconds and self.faults.throttling_now())
            or any(s in r for s in a.throttle for r in envelope.rcpt_tos)
            or (a.throttle_first and self.faults.throttle(envelope.rcpt_tos))
        ):
            self.spool.throttled += 1
            self.spool.write_stats()
            return THROTTLE
        if a.tempfail_at == "data" and self.faults.tempfail(envelope.rcpt_tos):
            return TEMPFAIL
        self.spool.record(envelope, session.peer)
        log.info("message %d accepted as %d.eml for %s", n, self.spool.accepted, envelope.rcpt_tos)
        for rcpt in envelope.rcpt_tos:
            if any(s in rcpt for s in a.bounce_later):
                write_dsn(a.bounce_maildir, envelope, rcpt, n)
        return "250 2.0.0 OK queued"


def write_dsn(maildir: Path, envelope: Envelope, rcpt: str, n: int) -> None:
    """A late bounce of `rcpt`'s message, as the next hop would send it to the envelope sender."""
    original = message_id(envelope.original_content or b"") or "<unknown@example.org>"
    sender = envelope.mail_from
    text = (
        "Return-Path: <>\r\n"
        f"Delivered-To: {sender}\r\n"
        "From: MAILER-DAEMON@mx.readers.test (Mail Delivery System)\r\n"
        f"To: {sender}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-Id: <dsn-{n}-{time.time_ns()}@mx.readers.test>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"\r\n'
        "\r\n--DSN\r\nContent-Type: text/plain\r\n\r\n"
        f"<{rcpt}>: host mx.readers.test said: 550 5.1.1 no such user\r\n"
        "\r\n--DSN\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.readers.test\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: no such user\r\n"
        "\r\n--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"To: {rcpt}\r\nMessage-ID: {original}\r\n"
        "\r\n--DSN--\r\n"
    )
    (maildir / "tmp").mkdir(parents=True, exist_ok=True)
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.dsn{n}.test"
    tmp = maildir / "tmp" / name
    tmp.write_text(text)
    os.replace(tmp, maildir / "new" / name)


async def hang_up(server: SMTP) -> None:
    """Close abruptly and never reply. aiosmtpd cancels the session's task once the connection
    is lost, so we wait for that rather than return a reply nobody can read (writing to the dead
    socket would surface as a stray ConnectionResetError in the log)."""
    if server.transport is not None:
        server.transport.abort()
    await asyncio.get_running_loop().create_future()


class TestSMTP(SMTP):
    """aiosmtpd's server with a connection count around each session."""

    def __init__(self, handler, spool: Spool, max_connections: int, inject_after_starttls: bool, **kwargs):
        super().__init__(handler, **kwargs)
        self.spool = spool
        self.max_connections = max_connections
        self.inject_after_starttls = inject_after_starttls

    async def push(self, status: str) -> None:
        if self.inject_after_starttls and status.startswith("220 Ready to start TLS"):
            status += "\r\n554 5.7.0 injected before the handshake"
        await super().push(status)

    # _handle_client runs exactly once per TCP connection (STARTTLS does not restart it) and is
    # cancelled when the connection goes, which makes it the one reliable place to count.
    async def _handle_client(self) -> None:
        s = self.spool
        s.conn_now += 1
        s.conn_total += 1
        s.conn_peak = max(s.conn_peak, s.conn_now)
        s.write_stats()
        try:
            if self.max_connections and s.conn_now > self.max_connections:
                s.conn_refused += 1
                s.write_stats()
                await self.push("421 4.7.0 too many connections, try again later")
                if self.transport is not None:
                    self.transport.close()
                return
            await super()._handle_client()
        finally:
            s.conn_now -= 1
            s.write_stats()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--spool", type=Path, required=True)
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--tempfail-first", type=int, default=0, metavar="N")
    p.add_argument("--throttle-first", type=int, default=0, metavar="N")
    p.add_argument("--throttle-seconds", type=float, default=0.0, metavar="S")
    p.add_argument("--throttle", action="append", default=[], metavar="RCPT_SUBSTRING")
    p.add_argument("--tempfail-at", choices=["data", "rcpt"], default="data")
    p.add_argument("--reject", action="append", default=[], metavar="RCPT_SUBSTRING")
    p.add_argument("--reject-at", choices=["rcpt", "data"], default="rcpt")
    p.add_argument("--drop-every", type=int, default=0, metavar="N")
    p.add_argument("--stall-every", type=int, default=0, metavar="N")
    p.add_argument("--stall-seconds", type=float, default=30.0, metavar="S")
    p.add_argument("--max-connections", type=int, default=0, metavar="N")
    p.add_argument("--accept-delay", type=float, default=0.0, metavar="S")
    p.add_argument("--no-smtputf8", action="store_true")
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--inject-after-starttls", action="store_true")
    p.add_argument("--bounce-later", action="append", default=[], metavar="RCPT_SUBSTRING")
    p.add_argument("--bounce-maildir", type=Path)
    a = p.parse_args(argv)
    if a.bounce_later and a.bounce_maildir is None:
        p.error("--bounce-later needs --bounce-maildir")
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if (a.require_tls or a.implicit_tls) and a.tls_cert is None:
        p.error("--require-tls and --implicit-tls need --tls-cert and --tls-key")
    if a.auth is not None and ":" not in a.auth:
        p.error("--auth takes USER:PASS")
    return a


def make_authenticator(auth: str | None):
    user, _, password = (auth or "").partition(":")

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        if auth is None:
            return AuthResult(success=True, auth_data=auth_data)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        log.info("AUTH %s as %r: %s", mechanism, auth_data.login, "ok" if ok else "refused")
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    return authenticate


async def serve(a: argparse.Namespace) -> None:
    spool = Spool(a.spool)
    spool.write_stats()
    handler = Handler(spool, Faults(a))

    tls = None
    if a.tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)

    def session() -> TestSMTP:
        return TestSMTP(
            handler,
            spool=spool,
            max_connections=a.max_connections,
            inject_after_starttls=a.inject_after_starttls,
            hostname="gazette-test-smtp",  # the default, getfqdn(), can wait on DNS for seconds
            enable_SMTPUTF8=not a.no_smtputf8,
            tls_context=None if a.implicit_tls else tls,
            require_starttls=a.require_tls and not a.implicit_tls,
            auth_required=a.auth is not None,
            auth_require_tls=False,  # loopback only; tests log in over plain connections too
            authenticator=make_authenticator(a.auth),
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(session, "127.0.0.1", a.port, ssl=tls if a.implicit_tls else None)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    log.info("listening on 127.0.0.1:%d, spool %s", port, a.spool)
    print(f"READY {port}", flush=True)
    await stop.wait()
    log.info("stopping")
    server.close()
    spool.write_stats()


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # aiosmtpd warns that AUTH without TLS is unsafe; on loopback in a test that is the point.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    asyncio.run(serve(parse_args(sys.argv[1:])))


if __name__ == "__main__":
    main()
