"""shardz's error codes (docs/PROTOCOL.md section 1, include/shardz/error.h) and the exception
the package raises for a coordinator's error reply. Pure: no threads."""

# code -> HTTP status, as the protocol's table gives them
STATUS = {
    "EINVAL": 400, "EPROTO": 400, "ENOENT": 404, "EEXIST": 409, "ENOSPC": 409, "ESTALE": 409,
    "ECONFLICT": 409, "ETOOBIG": 413, "ENOTSUP": 400, "EBUSY": 409, "ENOTLEADER": 503,
    "ETIMEDOUT": 504, "EIO": 500,
}


class ShardzError(Exception):
    """An error reply (or a failure to get one). status: the HTTP status (0 when no reply came);
    code: "EINVAL" and the like; message: the reply's message; body: the parsed reply or None."""

    def __init__(self, status, code, message, body=None):
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class ProtocolError(ValueError):
    """A message from the coordinator that this library refuses (answered 4xx): code is
    "EINVAL" or "EPROTO"."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message
