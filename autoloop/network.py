"""The servers autoloop talks to: whether one answers, told within seconds, and which failures are worth a retry.

Clients of a Ray head, an MLflow tracking server or a PostgreSQL database that does not answer wait and retry for
minutes before they give up. :func:`check_reachable` opens one TCP connection with a short timeout first, so a wrong
address or a stopped server is a one-line error that names the address (never its password).

:func:`is_transient` sorts failures for retries: a server or worker that could not be reached, a connection that
dropped, a Ray worker or node that died may go away on their own; a bad config, a broken fleet log or a gate that
fails will fail again the same way.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

#: Ports of the schemes autoloop connects to, when the address leaves them out.
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "ray": 10001}
#: How long :func:`check_reachable` waits for a connection.
CONNECT_TIMEOUT_S = 5.0


class Unreachable(ConnectionError):
    """A server that did not accept a connection (transient: it may come back)."""


def redact(address: str) -> str:
    """``address`` with the password of its user info (``user:password@``) replaced by ``***``."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    if parts.password is None:
        return address
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rsplit("@", 1)[1]
    return address.replace(parts.netloc, user + host, 1)


def endpoint(address: str) -> tuple[str, int]:
    """``(host, port)`` of a URL (``postgresql://u:p@h:5432/db``, ``http://h:5000``, ``ray://h:10001``) or of a
    bare ``host:port``.

    :raises ValueError: when the address names no host, or no port that its scheme implies.
    """
    scheme = address.split("://", 1)[0].split("+", 1)[0] if "://" in address else ""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{redact(address)}: expected host:port or a URL with a host")
    return parts.hostname, port


def check_reachable(address: str, *, what: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) one TCP connection to ``address``.

    :param what: what is there, for the message (e.g. ``the Ray cluster``).
    :raises Unreachable: when nothing accepts the connection within ``timeout_s``.
    """
    host, port = endpoint(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or type(error).__name__
        raise Unreachable(f"{what} at {redact(address)} does not answer ({reason} from {host}:{port} within "
                          f"{timeout_s:g} s): is it running, and is the address right?") from None


#: Exception classes (by name, in the libraries named) whose failures may go away on a retry: connections refused,
#: dropped or timed out; Ray workers, nodes and objects lost with them.
_TRANSIENT_NAMES = {
    "builtins": {"ConnectionError", "TimeoutError"},
    "requests": {"ConnectionError", "Timeout"},
    "urllib3": {"ProtocolError", "NewConnectionError", "MaxRetryError", "TimeoutError"},
    "httpx": {"TransportError"},
    "httpcore": {"NetworkError", "TimeoutException"},
    "sqlalchemy": {"OperationalError", "DisconnectionError"},
    "psycopg2": {"OperationalError"},
    "ray": {"WorkerCrashedError", "NodeDiedError", "RaySystemError", "ObjectLostError", "OwnerDiedError",
            "ObjectFetchTimedOutError", "LocalRayletDiedError", "ActorDiedError", "ActorUnavailableError"},
}
#: MLflow error codes of a server that is there but cannot answer now.
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from or while handling) may go away on a retry."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "error_code", None) in _TRANSIENT_CODES:
            return True
        for cls in type(current).__mro__:
            if cls.__name__ in _TRANSIENT_NAMES.get(cls.__module__.split(".", 1)[0], ()):
                return True
        suppressed = current.__suppress_context__  # (``raise ... from None``: what it handled is not its cause)
        current = current.__cause__ or (None if suppressed else current.__context__)
    return False
