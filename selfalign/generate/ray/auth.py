"""Ray's token authentication as `--ray HOST:PORT` meets it: tell a cluster that wants a token
from one that is not there, and use a token that is at hand.

Since Ray 2.59 a cluster started with `ray start --head` asks every caller for a token when one
exists on the head (2.61: always). A client sends its token only when RAY_AUTH_MODE=token, and
Ray reads that setting once, at import. Without it `ray.init(address=...)` retries for 20 s and
then reports a cluster it "failed to connect to", which reads as if none were running. One gRPC
call to the head's GCS without a token answers in milliseconds: UNAUTHENTICATED means the
cluster is there and wants a token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from selfalign.errors import UserError

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = "~/.ray/auth_token"
PROBE_TIMEOUT_S = 5.0
# Any GCS call is checked for the token before it runs; this one needs no arguments.
PROBE_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"
WHERE_TOKENS_GO = (f"put the cluster's token (`ray get-auth-token` on the head prints it) in "
                   f"{TOKEN_ENV}, in a file named by {TOKEN_PATH_ENV}, or in {DEFAULT_TOKEN_FILE}, "
                   f"and set {MODE_ENV}=token")


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # where it was found, as a user would name it


def find_token(environ=os.environ, home: Path | None = None) -> Token | None:
    """The token Ray would send, looked up in Ray's order: the variable, the file it names,
    then ~/.ray/auth_token."""
    value = environ.get(TOKEN_ENV, "").strip()
    if value:
        return Token(value, TOKEN_ENV)
    named = environ.get(TOKEN_PATH_ENV, "").strip()
    if named:  # Ray refuses to fall back past an unreadable named file, and so does this
        try:
            value = Path(named).expanduser().read_text(encoding="utf-8").strip()
        except OSError as err:
            raise UserError(f"{TOKEN_PATH_ENV}={named}: cannot read the Ray token there "
                            f"({err.strerror})") from None
        if not value:
            raise UserError(f"{TOKEN_PATH_ENV}={named}: the file is empty; it should hold the "
                            f"cluster's token (`ray get-auth-token` on the head prints it)")
        return Token(value, named)
    default = (home or Path.home()) / ".ray" / "auth_token"
    try:
        value = default.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Token(value, DEFAULT_TOKEN_FILE) if value else None


def wants_token(host: str, port: int, token: str | None = None) -> bool | None:
    """Whether the GCS at host:port refuses a call carrying `token` (or none).

    None when the answer says nothing about tokens (not a Ray head, or gRPC missing): the
    caller then leaves the connection to Ray.
    """
    try:
        import grpc
    except ImportError:
        return None
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        call = channel.unary_unary(PROBE_METHOD, request_serializer=bytes,
                                   response_deserializer=bytes)
        try:
            call(b"", timeout=PROBE_TIMEOUT_S, metadata=metadata)
        except grpc.RpcError as err:
            return True if err.code() == grpc.StatusCode.UNAUTHENTICATED else None
    return False


def authenticate(address: str, host: str, port: int, log) -> None:
    """Before `ray.init`: when the cluster wants a token, use the one at hand or say what to do.

    A token is switched on only when RAY_AUTH_MODE is unset (what `ray.init(address="auto")`
    does on a node of the cluster); a mode the user set is respected.
    """
    if not wants_token(host, port):
        return
    token = find_token()
    if token is None:
        raise UserError(f"--ray {address}: the Ray cluster there asks for an authentication "
                        f"token and none was found here: {WHERE_TOKENS_GO}")
    if wants_token(host, port, token.value):
        raise UserError(f"--ray {address}: the Ray cluster there refuses the token in "
                        f"{token.source} (it is another cluster's): {WHERE_TOKENS_GO}")
    mode = os.environ.get(MODE_ENV, "").strip()
    if mode.lower() == "token":
        return
    if mode:
        raise UserError(f"--ray {address}: the Ray cluster there asks for an authentication "
                        f"token, but {MODE_ENV}={mode} here: set {MODE_ENV}=token (the token in "
                        f"{token.source} is this cluster's)")
    send_token()
    log(f"Ray: the cluster at {address} asks for a token; using the one in {token.source} "
        f"(as {MODE_ENV}=token would)")


def send_token() -> None:
    """Make this process (and what it starts) send its token: Ray read RAY_AUTH_MODE at import,
    so its configuration is read again."""
    os.environ[MODE_ENV] = "token"
    from ray._raylet import Config

    Config.initialize("")


def is_auth_failure(err: BaseException | None) -> bool:
    """Whether Ray's error on connecting (or the one it was raised from) is about the token:
    for `ray://` and `auto`, which are not asked beforehand."""
    from ray.exceptions import AuthenticationError

    while err is not None:
        text = str(err)
        if isinstance(err, AuthenticationError) or "InvalidAuthToken" in text or (
                "authentication token" in text.lower()):
            return True
        err = err.__cause__ or err.__context__
    return False
