"""A TCP proxy on 127.0.0.1 that can make a service unreachable for real: refuse connections, or hang.

The soak puts it between the functions and moto's Secrets Manager (`AWS_ENDPOINT_URL_SECRETS_MANAGER`):
`refuse()` closes its listening socket (the next connection is refused), `hang()` accepts and never
answers (the client's read timeout), `answer(status, body)` answers every HTTP request itself (DynamoDB's
throttling, say), `mend()` passes traffic through again. Every mode change closes the
connections open so far, so a client's pooled connection meets the fault too.
"""

from __future__ import annotations

import contextlib
import socket
import threading

HOST = "127.0.0.1"
HANG_SECONDS = 120.0  # a hung connection is closed after this at the latest


class FaultProxy:
    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind((HOST, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.target: tuple[str, int] | None = None
        self.mode = "pass"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._answer = b""
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def refuse(self) -> None:
        self._switch("refuse")

    def hang(self) -> None:
        self._switch("hang")

    def mend(self) -> None:
        self._switch("pass")

    def answer(self, status: int, body: bytes, content_type: str = "application/x-amz-json-1.0") -> None:
        """Answer every HTTP request with this status and body, as the service would (kept alive)."""
        head = f"HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        self._answer = head.encode() + body
        self._switch("answer")

    def close(self) -> None:
        self._switch("refuse")

    # --- inside ---------------------------------------------------------------------------------
    def _switch(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            sockets, self._open = self._open, set()
            listener = self._listener
            if mode == "refuse":
                self._listener = None
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        if mode == "refuse" and listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept(), which holds the socket
            listener.close()
        elif mode != "refuse" and listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: refusing
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            mode = self.mode
            self._open.add(conn)
        if mode == "answer":
            _answer_each(conn, self._answer)
            return
        if mode == "hang" or self.target is None:
            conn.settimeout(HANG_SECONDS)
            with contextlib.suppress(OSError):
                while conn.recv(65536):  # read, never answer, until closed by a mode change
                    pass
            return
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._open.add(upstream)
        threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()
        _pump(conn, upstream)


def _answer_each(conn: socket.socket, answer: bytes) -> None:
    """Read each HTTP request on the connection (headers, then Content-Length bytes) and send `answer`."""
    buffer = b""
    with contextlib.suppress(OSError):
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(buffer) < length:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            buffer = buffer[length:]
            conn.sendall(answer)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make soak (python -m local.soak), which puts it before moto")
