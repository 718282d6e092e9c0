"""REST connections that a slow, stalled or oversized client cannot hold or break.

waitress (rest.py's HTTP server) reads requests in one asynchronous loop and
hands complete ones to its threads, so a slow client costs a socket, not a
thread. What it leaves open, closed here by its documented extension point
(`channel_class`):

- **Read timeout.** waitress closes a connection only after `channel_timeout`
  of silence, so a client that sends one byte every few seconds holds its
  socket, and one of the server's `connection_limit` slots, for ever
  (slow-loris). Here a request, head and body, must arrive within
  `REQUEST_READ_TIMEOUT_S` of its first byte, or the connection is closed
  (as nginx's `client_header_timeout`/`client_body_timeout` close it).
- **Error replies the client receives.** waitress answers a body over the
  limit (413), a header block over the limit (431) or a broken chunked body
  (400) and closes the socket at once, while the client is still sending: the
  unread bytes make the kernel reset the connection, and the client sees a
  broken pipe instead of the reply. RFC 9112 section 9.6 asks for a *lingering
  close*: half-close, then read and discard what the client still sends, for a
  bounded time (`LINGER_S`), before closing.
- **Error bodies in the API's form**: `{"error": "..."}` (JSON, as every other
  REST error of this server), naming the limit and the flag that sets it.
"""

from __future__ import annotations

import json
import socket
import time

import waitress.channel
import waitress.task

# A request's head and body must arrive within this long of its first byte: a 64 MiB body
# (--max_message_bytes) needs 9 Mbit/s; this model's requests are ~100 KB.
REQUEST_READ_TIMEOUT_S = 60.0
# How long a connection closing after an error reply keeps reading (and discarding) what the
# client still sends, so the client reads the reply instead of a reset.
LINGER_S = 10.0

# waitress's error -> what to say about it (the limits are set by these flags).
_ERROR_HINTS = {413: "the request body is larger than --max_message_bytes allows",
                431: "the request headers are larger than this server accepts"}


class JsonErrorTask(waitress.task.ErrorTask):
    """waitress's own error replies (413, 431, 400 for broken framing) as `{"error": msg}`."""

    def execute(self):
        error = self.request.error
        message = _ERROR_HINTS.get(error.code, error.reason)
        if error.body:
            message = f"{message} ({error.body})"
        body = json.dumps({"error": message}, indent=4).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class BoundedChannel(waitress.channel.HTTPChannel):
    """An HTTP connection with a per-request read deadline and a lingering close."""

    error_task_class = JsonErrorTask
    _request_started = None   # monotonic time of the first byte of the request being read
    _linger_until = None      # set once the reply is sent and the write side shut
    _closing_after_reply = False

    def received(self, data):
        if self.request is None and data:
            self._request_started = time.monotonic()
        return super().received(data)

    def readable(self):
        now = time.monotonic()
        if self._linger_until is not None:
            if now > self._linger_until:
                self.handle_close()
                return False
            return True
        if (self.request is not None and self._request_started is not None
                and now - self._request_started > REQUEST_READ_TIMEOUT_S):
            self.will_close = True  # handle_write closes it; nothing answered, as nginx's 408
            return False
        return super().readable()

    def writable(self):
        return self._linger_until is None and super().writable()

    def handle_read(self):
        if self._linger_until is None:
            return super().handle_read()
        try:
            data = self.recv(self.adj.recv_bytes)
        except OSError:
            data = b""
        if not data:  # the client finished sending (or went away): now close
            self.handle_close()

    def handle_write(self):
        # waitress closes as soon as a reply that ends the connection is flushed (through
        # handle_close, below): note that this close is that one.
        self._closing_after_reply = self.close_when_flushed
        try:
            super().handle_write()
        finally:
            self._closing_after_reply = False

    def handle_close(self):
        if self._closing_after_reply and self._linger_until is None and self._linger():
            return
        super().handle_close()

    def _linger(self) -> bool:
        """Shuts the write side (the client reads the reply, then end of stream) and reads
        on until the client closes or LINGER_S pass; False when the socket is already gone."""
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        self.will_close = self.close_when_flushed = False
        self._linger_until = time.monotonic() + LINGER_S
        return True


def use_bounded_channels(http_server) -> None:
    """Makes every listening socket of a waitress server (one, or several for a host name
    with several addresses) accept its connections as BoundedChannel."""
    for dispatcher in list(http_server._map.values()) + [http_server]:
        if hasattr(dispatcher, "channel_class"):
            dispatcher.channel_class = BoundedChannel
