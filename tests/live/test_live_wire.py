"""The live socket writer over real socket pairs: frames whole and in order, slow readers cut off.

Both kinds of socket the gateway can hand it: a gevent socket (the gateway's worker class; the
fan-out writes straight to the kernel when there is room) and a plain one (threads; everything
goes through the writer thread).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection as WsConnection
from wsproto.events import TextMessage

from gateway.live.wire import Outgoing, SocketWriter
from tests.support import REPO_ROOT

KINDS = ("gevent", "plain")
# gevent sockets belong to one thread's hub: the gevent variant runs in a monkey-patched child,
# where threads are greenlets and socket.socketpair() gives gevent sockets, as in the gateway.
GEVENT_CHILD = """
from gevent import monkey; monkey.patch_all()
from tests.live import test_live_wire
test_live_wire.{check}()
print("ok")
"""


def _in(kind: str, check) -> None:
    if kind == "plain":
        check()
        return
    script = GEVENT_CHILD.format(check=check.__name__)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


class _FakeServerWebSocket:
    """What SocketWriter needs of simple-websocket's Server: the socket it writes to."""

    def __init__(self, sock):
        self.sock = sock


def _read_messages(sock: socket.socket, count: int) -> list[str]:
    """Read frames as a WebSocket client would until ``count`` text messages arrived."""
    client = WsConnection(ConnectionType.CLIENT)
    messages: list[str] = []
    buffered = ""
    sock.settimeout(10)
    while len(messages) < count:
        data = sock.recv(65536)
        assert data, f"the writer closed the socket after {len(messages)} messages"
        client.receive_data(data)
        for event in client.events():
            assert isinstance(event, TextMessage), event
            buffered += event.data
            if event.message_finished:
                messages.append(buffered)
                buffered = ""
    return messages


@pytest.mark.parametrize("kind", KINDS)
def test_frames_arrive_whole_and_in_order_from_many_writers(kind):
    _in(kind, check_frames_whole_and_in_order)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reader_that_stops_reading_is_cut_off_not_waited_for(kind):
    _in(kind, check_a_stalled_reader_is_cut_off)


def test_a_socket_with_room_gets_no_writer_thread_until_a_frame_waits():
    _in("gevent", check_writer_thread_only_when_needed)


def check_writer_thread_only_when_needed() -> None:
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer = SocketWriter(_FakeServerWebSocket(server), max_pending=1000, name="lazy-writer")
    writer.write(Outgoing("fits"))
    assert _read_messages(client, 1) == ["fits"]
    assert not _threads_named("lazy-writer"), "a frame the kernel took needs no writer thread"
    for n in range(50):  # ~200 KB into a 4 KB buffer nobody reads yet: frames must wait
        writer.write(Outgoing(f"{n}:" + "w" * 4000))
    assert len(_threads_named("lazy-writer")) == 1
    received = _read_messages(client, 50)
    assert [m.split(":")[0] for m in received] == [str(n) for n in range(50)]
    writer.finish()
    server.close()
    client.close()


def _threads_named(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def check_frames_whole_and_in_order() -> None:
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # so some writes must queue
    writer = SocketWriter(_FakeServerWebSocket(server), max_pending=100_000, name="test")
    shared = Outgoing("x" * 3000 + "|shared")  # one frame object, written by many threads
    per_thread = 200

    def write_many(tag: str) -> None:
        for n in range(per_thread):
            writer.write(Outgoing(f"{tag}:{n}:" + "y" * (n * 37 % 2000)))
            if n % 50 == 0:
                writer.write(shared)
            if n % 10 == 0:
                time.sleep(0)  # let the reader and the other writers run (greenlets yield here)

    reading = []
    reader = threading.Thread(target=lambda: reading.append(_read_messages(client, 4 * 204)))
    reader.start()
    threads = [threading.Thread(target=write_many, args=(tag,)) for tag in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader.join(30)
    assert reading, "the reader did not get every message"
    messages = reading[0]
    assert messages.count(shared.text) == 16
    for tag in "abcd":
        mine = [m.split(":")[1] for m in messages if m.startswith(f"{tag}:")]
        assert mine == [str(n) for n in range(per_thread)], f"writer {tag} out of order"
    writer.finish()
    server.close()
    client.close()


def check_a_stalled_reader_is_cut_off() -> None:
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer = SocketWriter(_FakeServerWebSocket(server), max_pending=20, name="test")
    message = Outgoing("z" * 4000)
    for _ in range(2000):  # far more than the kernel buffers hold; nothing reads
        writer.write(message)
        if writer.closed.is_set():
            break
    assert writer.closed.is_set(), "a reader that never reads must be dropped"
    client.settimeout(10)
    drained = b""
    while chunk := client.recv(65536):  # the writer shut the socket: the stream ends
        drained += chunk
    assert len(drained) < 2000 * 4000
    server.close()
    client.close()
