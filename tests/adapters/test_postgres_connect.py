"""``PostgresStore`` when the server cannot be reached: fast failures that say why.

A refused port, an unknown host and a wrong database fail at the first call,
in well under the pool timeout, with libpq's reason; a server that accepts
and never answers fails after the connect timeout and says so. A server lost
after the store opened gives ``StoreUnavailableError`` too, fast, and the
store recovers when it is back. :class:`TcpProxy` and :func:`silent_port`
stand in for a server that goes away or hangs (the CLI tests use them too).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, suppress

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from adapters.hosts.logs import store_unavailable
from kernel.errors import StoreError
from tests.hosts.waiting import wait_for

postgres = pytest.importorskip("adapters.postgres")

from adapters.postgres import PostgresStore  # noqa: E402
from adapters.postgres.errors import StoreUnavailableError  # noqa: E402

REFUSED = "postgresql://postgres:s3cret-pw@127.0.0.1:1/test"
"""Nothing listens on port 1: the connect is refused at once."""


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung or black-holed server)."""
    with closing(silent_port()) as server:
        yield server.getsockname()[1]


def silent_port() -> socket.socket:
    """A listening socket nobody serves: connects complete, then nothing is ever said."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


class TcpProxy:
    """A TCP proxy to a PostgreSQL server that a test can break.

    :meth:`refuse`: the server went down (open connections are cut, new ones
    refused). :meth:`hang`: new connections are accepted and never answered;
    the open ones are cut (``cut=True``: the server went away and its address
    black-holes) or stay open and silent (the server hangs). :meth:`restore`
    forwards again, on the same port.
    """

    def __init__(self, dsn: str) -> None:
        info = conninfo_to_dict(dsn)
        self.target = (str(info.get("host") or "127.0.0.1"), int(str(info.get("port") or 5432)))
        self.dsn = dsn
        self.forwarding = True
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._upstreams: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.port = 0
        self._listen()

    def proxied_dsn(self) -> str:
        """The DSN of the server through this proxy."""
        return make_conninfo(self.dsn, host="127.0.0.1", port=str(self.port))

    def _listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                if not self.forwarding:
                    continue  # accepted, and never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._upstreams.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while (data := source.recv(65536)) and self.forwarding:
                sink.sendall(data)
        if self.forwarding:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    @staticmethod
    def _close(sockets: list[socket.socket]) -> None:
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _take(self, clients: bool) -> list[socket.socket]:
        with self._lock:
            taken, self._upstreams = self._upstreams, []
            if clients:
                taken += self._clients
                self._clients = []
        return taken

    def refuse(self) -> None:
        """Cut every connection and close the port: new connects are refused."""
        self.forwarding = False
        if self._server is not None:
            self._close([self._server])  # shutdown first: it wakes the thread in accept()
            self._server = None
        self._close(self._take(clients=True))

    def hang(self, cut: bool) -> None:
        """Answer nothing more; ``cut``: also close the open connections."""
        self.forwarding = False
        self._close(self._take(clients=cut))

    def restore(self) -> None:
        """Forward again, on the same port."""
        self._close(self._take(clients=True))
        self.forwarding = True
        if self._server is None:
            self._listen()

    def close(self) -> None:
        self.refuse()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    from tests.postgres_support import require_postgres

    made = TcpProxy(require_postgres())
    yield made
    made.close()


def failure(store: PostgresStore) -> tuple[StoreUnavailableError, float]:
    """The error of a first call on ``store``, and how long the call took."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        store.list_runs()
    return raised.value, time.monotonic() - started


def test_a_refused_port_fails_at_once_with_libpqs_reason() -> None:
    store = PostgresStore(REFUSED, timeout=5)
    try:
        error, took = failure(store)
    finally:
        store.close()
    assert took < 2, "a refused connect must not wait for the pool timeout"
    message = str(error)
    assert message.startswith("no PostgreSQL connection to 127.0.0.1:1 (connection refused): ")
    assert "Connection refused" in message  # libpq's own words
    assert "s3cret-pw" not in message
    assert store_unavailable(error)  # what the worker hosts look for


def test_an_unknown_host_fails_at_once_and_says_so() -> None:
    store = PostgresStore("postgresql://postgres@no-such-host.invalid/test", timeout=5)
    try:
        error, took = failure(store)
    finally:
        store.close()
    assert took < 2
    assert str(error).startswith("no PostgreSQL connection to no-such-host.invalid:5432 ")
    assert "(unknown host)" in str(error)


@pytest.mark.postgres
def test_a_wrong_database_fails_at_once_and_names_it() -> None:
    from tests.postgres_support import require_postgres

    name = f"wfk_missing_{uuid.uuid4().hex[:8]}"
    dsn = make_conninfo(require_postgres(), dbname=name)
    store = PostgresStore(dsn, timeout=5)
    try:
        error, took = failure(store)
    finally:
        store.close()
    assert took < 2
    assert f"(no database {name!r}): " in str(error)
    assert f'database "{name}" does not exist' in str(error)


def test_a_server_that_never_answers_fails_after_the_connect_timeout(silent: int) -> None:
    def wait_with(timeout: float) -> tuple[StoreUnavailableError, float]:
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{silent}/test", timeout=timeout)
        try:
            return failure(store)
        finally:
            store.close()

    error, short = wait_with(2)
    _, long = wait_with(4)
    # Each call waited for the timeout it was given, not a fixed delay and not at
    # once: twice the timeout waits about 2 s longer (libpq counts whole seconds,
    # so allow 1 s), measured as a difference so machine load cancels out.
    assert long - short >= 1.0, f"timeout 2 s took {short:.2f} s, timeout 4 s took {long:.2f} s"
    assert long < 20, "it gave up instead of hanging"
    assert f"to 127.0.0.1:{silent} (no answer within the 2 s connect timeout)" in str(error)


def test_the_dsns_connect_timeout_wins_over_the_store_timeout(silent: int) -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{silent}/test?connect_timeout=2")
    try:
        error, took = failure(store)
    finally:
        store.close()
    assert took < 20  # the DSN's 2 s, not the store's 30 s default
    assert "no answer within the 2 s connect timeout" in str(error)


def test_a_bad_dsn_or_timeout_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^dsn: "):
        PostgresStore("host=localhost port")
    with pytest.raises(ValueError, match="timeout and connect_timeout: expected seconds > 0"):
        PostgresStore(REFUSED, timeout=0)


@pytest.mark.postgres
def test_a_lost_server_fails_fast_with_the_reason_and_the_store_recovers(proxy: TcpProxy) -> None:
    from tests.postgres_support import drop_schema, fresh_schema

    schema = fresh_schema()
    store = PostgresStore(proxy.proxied_dsn(), schema=schema, pool_size=2, timeout=10)
    try:
        assert store.list_runs() == []
        proxy.refuse()
        errors: list[StoreError] = []
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(StoreError) as raised:
                store.list_runs()
            errors.append(raised.value)
        assert all(store_unavailable(error) for error in errors)
        # Once the pool's reconnect failed, calls fail within FAIL_FAST_S, not the 10 s timeout.
        assert time.monotonic() - started < 6
        assert "(connection refused)" in str(errors[-1])
        proxy.restore()
        wait_for("the store to reconnect", lambda: _answers(store), timeout=15)
    finally:
        store.close()
        drop_schema(schema)


def _answers(store: PostgresStore) -> bool:
    try:
        store.list_runs()
    except StoreError:
        return False
    return True


@pytest.mark.postgres
def test_close_does_not_wait_for_a_listener_stuck_in_a_connect(proxy: TcpProxy) -> None:
    from tests.postgres_support import drop_schema, fresh_schema

    schema = fresh_schema()
    store = PostgresStore(proxy.proxied_dsn(), schema=schema, pool_size=1, timeout=10)
    try:
        assert store.wait_for_jobs(0.01) is False  # listening, through the proxy
        proxy.hang(cut=True)  # the listener reconnects, into a connect that never ends
        waiting = threading.Thread(target=_wait_twice, args=(store,), daemon=True)
        waiting.start()
        time.sleep(0.5)
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 2.5
    finally:
        drop_schema(schema)


def _wait_twice(store: PostgresStore) -> None:
    for _ in range(2):
        with suppress(StoreError):
            store.wait_for_jobs(0.2)
