"""Scenarios with real kernel sockets on 127.0.0.1: each makes one TCP/UDP behaviour happen.

Every function runs inside a private network namespace (see
:mod:`visualizer.scenarios.namespace`) while a sniffer captures its ``lo``, so
the capture holds exactly the scenario's packets. Setup commands (offloads,
nftables rules) run in that namespace too. Timeouts bound every wait.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

HOST = "127.0.0.1"
TIMEOUT = 10.0
STORY_PORT = 8080
QUESTION = b"tic tac toe?"
ANSWER = b"X wins, always. Play again?"


def listen(port: int, *, receive_buffer: int | None = None) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if receive_buffer is not None:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    server.bind((HOST, port))
    server.listen(4)
    server.settimeout(TIMEOUT)
    return server


def serve(server: socket.socket, handler: Callable[[socket.socket], object]) -> threading.Thread:
    """Accept one connection on ``server`` in a thread and hand it to ``handler``."""

    def run() -> None:
        with server:
            connection, _ = server.accept()
            connection.settimeout(TIMEOUT)
            with connection:
                handler(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def connect(port: int, **options: int) -> socket.socket:
    client = socket.socket()
    client.settimeout(TIMEOUT)
    for name, value in options.items():
        level = socket.IPPROTO_TCP if name.startswith("TCP_") else socket.SOL_SOCKET
        client.setsockopt(level, getattr(socket, name), value)
    client.connect((HOST, port))
    return client


def blocking(connection: socket.socket) -> socket.socket:
    """Make ``connection``'s calls wait in the kernel, bounded by ``SO_SNDTIMEO``/``SO_RCVTIMEO``.

    Python's own timeout makes a socket non-blocking and waits in ``poll()`` between calls, so a
    ``sendall`` that waits for the window shows in the kernel's recording as several short
    ``sendto`` calls with gaps between them. A blocking socket waits inside the call: one
    ``send()`` lasts as long as the program is blocked in it.
    """
    connection.settimeout(None)
    timeout = struct.pack("ll", int(TIMEOUT), 0)  # struct timeval
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
    return connection


def read_to_end(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def finish(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(TIMEOUT)


# -- the scenarios -----------------------------------------------------------------------------


def story() -> None:
    """A client asks its friend at port 8080 a tic-tac-toe question; the friend answers; both close."""

    def friend(connection: socket.socket) -> None:
        connection.recv(100)
        connection.sendall(ANSWER)
        read_to_end(connection)  # until the client's FIN

    thread = serve(listen(STORY_PORT), friend)
    with connect(STORY_PORT) as client:
        client.sendall(QUESTION)
        client.recv(100)
        time.sleep(0.02)
    finish(thread)


def close_client_first() -> None:
    """The client sends a request and closes first; the server closes after reading to the end."""

    thread = serve(listen(8081), read_to_end)
    with connect(8081) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    finish(thread)


def close_server_first() -> None:
    """The server answers and closes first (like HTTP/1.0); the client reads to the end, then closes."""

    def server(connection: socket.socket) -> None:
        connection.recv(100)
        connection.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")

    thread = serve(listen(8082), server)
    with connect(8082) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        read_to_end(client)
        time.sleep(0.02)
    finish(thread)


def half_close() -> None:
    """The client shuts down its sending side (FIN) and still receives what the server sends after."""

    def server(connection: socket.socket) -> None:
        request = read_to_end(connection)  # ends at the client's FIN
        for _ in range(3):
            connection.sendall(b"still talking about " + request[:8])
            time.sleep(0.01)

    thread = serve(listen(8083), server)
    with connect(8083) as client:
        client.sendall(b"question")
        client.shutdown(socket.SHUT_WR)
        read_to_end(client)
    finish(thread)


def simultaneous_close() -> None:
    """Both ends close while each one's FIN is still in flight: both pass through CLOSING.

    A token-bucket qdisc on this scenario's ``lo`` (tbf, 8 kbit/s: about 70 ms a segment)
    holds segments in flight. The client's last data empties the bucket, so its FIN waits
    in the queue; the server closes 5 ms later, before that FIN can arrive. Each end then
    receives the other's FIN in FIN-WAIT-1 (RFC 9293 s3.6, Figure 13).
    """
    ready = threading.Event()

    def server(connection: socket.socket) -> None:
        connection.recv(100)
        ready.wait(TIMEOUT)
        time.sleep(0.002)  # the client's FIN is queued, not arrived
        connection.shutdown(socket.SHUT_WR)
        read_to_end(connection)

    thread = serve(listen(8084), server)
    with connect(8084) as client:
        client.sendall(b"bye")
        time.sleep(0.3)  # the bucket fills again: "bye" and its ACK are long through
        client.sendall(b"x" * 40)  # empties the bucket: the FIN after it has to wait
        client.shutdown(socket.SHUT_WR)
        ready.set()
        read_to_end(client)
    finish(thread)


def refused() -> None:
    """A client connects to a port where nothing listens: the kernel answers the SYN with RST|ACK."""
    client = socket.socket()
    client.settimeout(TIMEOUT)
    try:
        client.connect((HOST, 9))
    except ConnectionRefusedError:
        pass
    finally:
        client.close()


def abort() -> None:
    """The client sets SO_LINGER to 0 and closes: the connection ends with RST instead of FIN."""

    def server(connection: socket.socket) -> None:
        try:
            read_to_end(connection)
        except ConnectionResetError:
            pass

    thread = serve(listen(8085), server)
    client = connect(8085)
    client.sendall(b"never mind")
    time.sleep(0.02)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    finish(thread)


def udp() -> None:
    """UDP request and response: datagrams, no connection, no handshake, no acknowledgement."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((HOST, 5353))
    server.settimeout(TIMEOUT)

    def answer() -> None:
        for _ in range(2):
            data, peer = server.recvfrom(2048)
            server.sendto(b"answer to " + data, peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(TIMEOUT)
        for question in (b"who is there?", b"and now?"):
            client.sendto(question, (HOST, 5353))
            client.recvfrom(2048)
    finish(thread)
    server.close()


def udp_closed_port() -> None:
    """A datagram to a port where nothing listens: the kernel answers ICMP port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(1.0)
        client.connect((HOST, 5354))  # a connected socket hears the ICMP error as ECONNREFUSED
        client.send(b"anyone there?")
        try:
            client.recv(100)
        except (ConnectionRefusedError, TimeoutError):
            pass


BULK_BYTES = 200_000
BULK_MSS = 1000


def bulk() -> None:
    """A bulk transfer cut into MSS-sized segments (offloads off in this namespace, MSS 1000).

    The client hands all its bytes to the kernel in one send() call: the socket is blocking (its
    wait bounded by SO_SNDTIMEO), so the call returns when the last byte is in the send buffer.
    Python's timeout would make the socket non-blocking, and sendall() a loop of send() calls
    that each return as soon as the buffer is full.
    """

    thread = serve(listen(8086), read_to_end)
    with connect(8086, TCP_MAXSEG=BULK_MSS) as client:
        client.settimeout(None)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(TIMEOUT), 0))
        client.sendall(bytes(range(256)) * (BULK_BYTES // 256))
    finish(thread)


def full_duplex() -> None:
    """Both ends write at once: data flows both ways and each segment's ACK field rides along.

    Each end writes in one thread and reads in another, on a blocking socket (see :func:`blocking`),
    so that a send() and a recv() of the same socket are in the kernel at the same time. The two
    writers start together (a barrier), on a path slow enough (``FULL_DUPLEX_PATH`` in the
    registry: 20 Mbit/s each way) that neither end's 60,000 bytes are through before the other's
    start, however late a writer thread gets to run. A small send buffer keeps each send() in the
    kernel until most of its bytes are acknowledged, and the readers ask for delayed ACKs
    (``TCP_QUICKACK`` off before each recv(): Linux acknowledges every segment at once at the
    start of a connection), which gives the data going the other way a chance to carry them.
    """
    start_together = threading.Barrier(2, timeout=TIMEOUT)

    def write_and_read(connection: socket.socket) -> None:
        blocking(connection).setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FULL_DUPLEX_SEND_BUFFER)

        def write() -> None:
            start_together.wait()
            connection.sendall(FULL_DUPLEX_PAYLOAD)

        writer = threading.Thread(target=write)
        writer.start()
        received = 0
        while received < len(FULL_DUPLEX_PAYLOAD):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            received += len(connection.recv(65536))
        writer.join(TIMEOUT)

    thread = serve(listen(8087), write_and_read)
    with connect(8087, TCP_MAXSEG=BULK_MSS) as client:
        write_and_read(client)
    finish(thread)


FULL_DUPLEX_PAYLOAD = b"x" * 60_000
"""What each end of ``full-duplex`` writes."""
FULL_DUPLEX_SEND_BUFFER = 8192
"""``SO_SNDBUF`` of both ends (Linux doubles it)."""


def zero_window() -> None:
    """A small receive buffer and a reader that pauses: the window closes, probes, then reopens.

    The client writes 16 KiB at a time on a blocking socket (see :func:`blocking`): the first
    writes fill its send buffer and return at once; the next one waits in the kernel while the
    window is zero, and returns only after the reader has made room again.
    """

    def server(connection: socket.socket) -> None:
        time.sleep(ZERO_WINDOW_PAUSE)  # not reading: the receive buffer fills, the window goes to zero
        read_to_end(connection)

    thread = serve(listen(ZERO_WINDOW_PORT, receive_buffer=ZERO_WINDOW_BUFFER), server)
    with connect(ZERO_WINDOW_PORT, TCP_MAXSEG=BULK_MSS) as client:
        blocking(client)
        data = b"z" * ZERO_WINDOW_BYTES
        for start in range(0, len(data), ZERO_WINDOW_WRITE):
            client.sendall(data[start : start + ZERO_WINDOW_WRITE])
    finish(thread)


ZERO_WINDOW_PORT = 8088
ZERO_WINDOW_BUFFER = 4096
"""The receiver's ``SO_RCVBUF`` (Linux doubles it: ``getsockopt`` returns 8192)."""
ZERO_WINDOW_PAUSE = 1.5
"""Seconds the reader waits before its first recv()."""
ZERO_WINDOW_BYTES = 120_000
ZERO_WINDOW_WRITE = 16_384
"""Bytes of each send() of the writer."""


LOSS_PORT = 8089


def loss() -> None:
    """One data segment is dropped on arrival (nftables rule): duplicate ACKs, SACK, a retransmission."""

    thread = serve(listen(LOSS_PORT), read_to_end)
    with connect(LOSS_PORT, TCP_MAXSEG=BULK_MSS) as client:
        client.sendall(b"L" * 60_000)
        time.sleep(0.3)
    finish(thread)


def keepalive() -> None:
    """An idle connection with TCP keep-alive after 1 s: probes and their ACKs, then a normal close."""

    thread = serve(listen(8090), read_to_end)
    with connect(8090, SO_KEEPALIVE=1, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1, TCP_KEEPCNT=5) as client:
        client.sendall(b"hello")
        time.sleep(3.6)
    finish(thread)


def nagle() -> None:
    """Small writes with Nagle's algorithm (they coalesce while data is unacknowledged), then with TCP_NODELAY.

    The server's delayed ACK holds each ACK back (TCP_QUICKACK is off), so with Nagle
    the client waits and sends the small writes together; with TCP_NODELAY each
    write leaves at once, in its own segment.
    """
    for port, no_delay in ((8091, 0), (8092, 1)):

        def server(connection: socket.socket) -> None:
            while True:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
                if not connection.recv(65536):
                    break

        thread = serve(listen(port), server)
        with connect(port, TCP_NODELAY=no_delay) as client:
            time.sleep(0.05)
            for index in range(NAGLE_WRITES):
                client.send(b"%09d\n" % index)
                time.sleep(0.002)
        finish(thread)


NAGLE_WRITES = 30


UDP_DATAGRAMS_PORT = 5355
UDP_DATAGRAM_SIZES = (5, 50, 500, 1472, 4000)
"""Bytes of each datagram the ``udp-datagrams`` client sends, in order: 1,472 is the most that fits one
packet of the MTU its ``lo`` has there (:data:`UDP_DATAGRAMS_MTU`, less 20 bytes of IP and 8 of UDP
header); the last one is larger."""
UDP_DATAGRAMS_MTU = 1500
UDP_RECEIVE_SIZE = 65536
"""What each ``recvfrom`` asks for: more than any datagram (UDP's largest payload is 65,507 bytes)."""


def udp_datagrams() -> None:
    """Datagrams of 5, 50, 500, 1,472 and 4,000 bytes sent back to back; the server's recvfrom(65536) returns one each.

    The client's five sendto calls are all made before the server reads: the five datagrams
    wait together in the server's receive queue, and still each recvfrom returns exactly
    one of them (UDP keeps the boundaries, RFC 768). This namespace's ``lo`` has an MTU of
    1,500 bytes: 1,472 bytes fill one packet, and the 4,000-byte datagram (4,008 with its UDP header) leaves in three IP
    fragments that the server's kernel reassembles before the socket sees it (RFC 791 s2.3).
    """
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.bind((HOST, UDP_DATAGRAMS_PORT))
        server.settimeout(TIMEOUT)
        for index, size in enumerate(UDP_DATAGRAM_SIZES):
            client.sendto(bytes((ord("a") + index,)) * size, (HOST, UDP_DATAGRAMS_PORT))
        for _ in UDP_DATAGRAM_SIZES:
            server.recvfrom(UDP_RECEIVE_SIZE)


WEB_PORT = 8000
DNS_PORT = 53
WEB_NAMES = ("www.example.test", "img.example.test", "api.example.test")
WEB_ABORTED = "/slow"
"""A path the server never answers: the client gives up and aborts (SO_LINGER 0: RST)."""
WEB_REQUESTS = 10
"""Requests the server answers (the aborted one comes on top)."""


def _dns_question(name: str) -> bytes:
    """A DNS question section (RFC 1035 s4.1.2): the name as labels, type A, class IN."""
    labels = b"".join(bytes((len(label),)) + label.encode() for label in name.split("."))
    return labels + b"\0" + struct.pack("!HH", 1, 1)


def _dns_answer(query: bytes) -> bytes:
    """The answer to a one-question query (RFC 1035 s4.1.1, s4.1.3): 127.0.0.1, TTL 60."""
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)  # a response; recursion desired, available
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(HOST)  # 0xC00C: the name at offset 12
    return header + query[12:] + record


def _read_head(connection: socket.socket) -> bytes:
    """Up to the blank line that ends an HTTP head (and whatever came with it)."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := connection.recv(4096)):
        data += chunk
    return data


def web() -> None:
    """A browser-like client: 3 DNS lookups over UDP, 10 HTTP requests (some at once), one refused, one aborted.

    A tiny HTTP/1.1 server listens on 127.0.0.1:8000 and a DNS-like server on UDP port 53.
    A request with "Connection: close" is answered and the server closes first (it ends in
    TIME-WAIT); the others are answered and the client closes first. Nothing listens on
    port 9: that connection is refused (RST|ACK). The server never answers "/slow": the
    client gives up and closes with SO_LINGER 0 (RST). 15 conversations: 10 complete,
    1 refused, 1 reset, 3 UDP.
    """
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind((HOST, DNS_PORT))
    resolver.settimeout(TIMEOUT)

    def resolve() -> None:
        for _ in WEB_NAMES:
            query, peer = resolver.recvfrom(512)
            resolver.sendto(_dns_answer(query), peer)

    def answer(connection: socket.socket) -> None:
        request = _read_head(connection)
        if request.startswith(f"GET {WEB_ABORTED} ".encode()):
            try:
                read_to_end(connection)  # until the client's RST
            except ConnectionResetError:
                pass
            return
        time.sleep(0.01)  # the server works a little: requests sent at once overlap
        body = b"<p>" + request.split(b" ")[1] + b"</p>\n"
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        if b"Connection: close" not in request:
            read_to_end(connection)  # the client closes first

    def accept(server: socket.socket) -> None:
        answering = []
        with server:
            for _ in range(WEB_REQUESTS + 1):
                connection, _ = server.accept()
                connection.settimeout(TIMEOUT)
                answering.append(threading.Thread(target=_closing_after, args=(answer, connection), daemon=True))
                answering[-1].start()
        finish(*answering)

    def look_up(name: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            header = struct.pack("!HHHHHH", 0x5000 + WEB_NAMES.index(name), 0x0100, 1, 0, 0, 0)  # recursion desired
            client.sendto(header + _dns_question(name), (HOST, DNS_PORT))
            client.recvfrom(512)
        time.sleep(0.01)

    def fetch(path: str, close: bool) -> None:
        with connect(WEB_PORT) as client:
            connection = "Connection: close\r\n" if close else ""
            client.sendall(f"GET {path} HTTP/1.1\r\nHost: www.example.test\r\n{connection}\r\n".encode())
            if close:
                read_to_end(client)  # until the server's FIN
            else:
                head, _, body = _read_head(client).partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                while len(body) < length:  # all of it: closing with unread data would send RST, not FIN
                    body += client.recv(4096)
        time.sleep(0.01)

    def fetch_at_once(*requests: tuple[str, bool]) -> None:
        fetching = [threading.Thread(target=fetch, args=request) for request in requests]
        for thread in fetching:
            thread.start()
        finish(*fetching)

    threads = [
        threading.Thread(target=resolve, daemon=True),
        threading.Thread(target=accept, args=(listen(WEB_PORT),), daemon=True),
    ]
    for thread in threads:
        thread.start()
    look_up("www.example.test")
    fetch("/", close=False)
    fetch("/style.css", close=True)
    look_up("img.example.test")
    fetch_at_once(("/img/1.png", False), ("/img/2.png", True), ("/img/3.png", False))
    look_up("api.example.test")
    fetch("/api/items", close=True)
    fetch("/api/items?page=2", close=False)
    fetch("/favicon.ico", close=True)
    fetch_at_once(("/font-a.woff", True), ("/font-b.woff", False))
    refused()  # port 9: nothing listens
    time.sleep(0.01)
    with connect(WEB_PORT) as client:
        client.sendall(f"GET {WEB_ABORTED} HTTP/1.1\r\nHost: www.example.test\r\n\r\n".encode())
        time.sleep(0.03)  # no answer: give up
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finish(*threads)
    resolver.close()


def _closing_after(handler: Callable[[socket.socket], object], connection: socket.socket) -> None:
    with connection:
        handler(connection)


ENCODING_TEXT = "café, s'il vous plaît?"
"""Chapter 1's text payload: characters, two of them outside ASCII (UTF-8 gives each two bytes)."""
ENCODING_RECORD_FORMAT = "!HI"
"""Chapter 1's binary payload: a 16-bit and a 32-bit unsigned field, ``!`` = network byte order
(big-endian, RFC 1700; RFC 791 appendix B), as the headers of IP and TCP carry their own fields."""
ENCODING_RECORD_FIELDS = ("port", "number")
ENCODING_RECORD = (STORY_PORT, 16_909_060)
"""The record's values: the port again (its two bytes, as in the TCP header), and a number whose four
bytes are 1, 2, 3, 4 in network order (16,909,060 = 1 * 2**24 + 2 * 2**16 + 3 * 2**8 + 4)."""


def encoding_answer_to_text(data: bytes) -> bytes:
    """The server's answer to the text: how many characters its bytes decode to (UTF-8)."""
    return f"{len(data.decode('utf-8'))} characters in {len(data)} bytes".encode()


def encoding_answer_to_record(data: bytes) -> bytes:
    """The server's answer to the record: its fields as it unpacked them (network byte order)."""
    port, number = struct.unpack(ENCODING_RECORD_FORMAT, data)
    return f"port={port} number={number}".encode()


def encoding() -> None:
    """A client sends a UTF-8 text and a binary record in network byte order; the server reads each and answers."""

    def server(connection: socket.socket) -> None:
        connection.sendall(encoding_answer_to_text(connection.recv(100)))
        connection.sendall(encoding_answer_to_record(connection.recv(100)))
        read_to_end(connection)  # until the client's FIN

    thread = serve(listen(STORY_PORT), server)
    with connect(STORY_PORT) as client:
        client.sendall(ENCODING_TEXT.encode("utf-8"))
        client.recv(100)  # the answer, before the record: one send, one segment each
        client.sendall(struct.pack(ENCODING_RECORD_FORMAT, *ENCODING_RECORD))
        client.recv(100)
        time.sleep(0.02)
    finish(thread)
