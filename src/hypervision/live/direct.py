"""Live frames written straight to a stream's connection (docs/adr/0053).

A stream's task sends its headers, its first frames and any backlog through the ASGI ``send``
as any response does. Then, while the task waits with nothing queued, the hub hands each new
frame to the connection's transport itself: no task to wake per stream and frame, no
middleware layer to cross. That is the cost of a delivery at 1,500 streams (issue 15).

Only under uvicorn's httptools protocol, whose response cycle this module knows (chunked
framing, flow control, disconnection). The application keeps the server's own ``send`` in the
request scope (``RAW_SEND``, set by ``hypervision.app``). Under any other server or protocol,
or when the writer cannot take a frame (the client reads too slowly: the transport asked to
pause), the frame goes through the stream's queue and task as before, so the order, the
queue's limit and the ``resync`` of a slow client stay as they were.
"""

from __future__ import annotations

from typing import Any

RAW_SEND = "hypervision.raw_send"  # the server's own ``send``, in the request scope
_CYCLE = ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle")


class DirectWriter:
    """Writes SSE frames as HTTP/1.1 chunks to one response's transport, in the event loop's
    thread (where the hub runs). ``write`` says False, writing nothing, when the frame must go
    the slow way: the connection is gone or closing, or its transport asked to pause."""

    __slots__ = ("cycle", "flow", "transport", "written")

    def __init__(self, cycle: Any) -> None:
        self.cycle, self.flow, self.transport = cycle, cycle.flow, cycle.transport
        self.written = 0  # frames written this way (the tests check the path is taken)

    @classmethod
    def of(cls, scope: Any) -> DirectWriter | None:
        """The writer of the response in ``scope``, once its headers are sent with chunked
        framing; None when the server is not one this module knows."""
        send = scope.get(RAW_SEND)
        cycle: Any = getattr(send, "__self__", None)
        kind = type(cycle)
        if (kind.__module__, kind.__name__) != _CYCLE:
            return None
        ready = cycle.response_started and not cycle.response_complete
        if not ready or cycle.chunked_encoding is not True or scope.get("method") != "GET":
            return None
        return cls(cycle)

    def write(self, data: bytes) -> bool:
        cycle, transport = self.cycle, self.transport
        if (
            cycle.disconnected
            or cycle.response_complete
            or self.flow.write_paused
            or transport.is_closing()
        ):
            return False
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))  # uvicorn's own chunk framing
        self.written += 1
        return True
