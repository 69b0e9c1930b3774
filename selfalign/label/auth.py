"""Who is asking: a labeller's token (`Authorization: Bearer`, or once in the start URL, which
trades it for a session cookie) or that session cookie, and the CSRF check on cookie requests.

Tokens and sessions are stored as sha256 only. A cookie request that changes state must carry
the session's CSRF token in `X-CSRF-Token` (the page's script sends it); a Bearer request needs
none, since a browser never adds that header by itself.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from fastapi import HTTPException, Request

from selfalign.label.db import LabelDB, Labeller

COOKIE = "selfalign_label"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Caller:
    labeller: Labeller
    csrf: str | None  # None for a Bearer caller


def caller(request: Request, db: LabelDB) -> Caller | None:
    """The labeller behind the request, or None."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        labeller = db.labeller_by_token(header[7:].strip())
        return Caller(labeller, None) if labeller else None
    session = request.cookies.get(COOKIE)
    if session:
        found = db.session(session)
        if found:
            return Caller(*found)
    return None


def require(request: Request, db: LabelDB, owner: bool = False) -> Caller:
    """The caller, or 401; 403 for a cookie request that changes state without its CSRF
    token, or for a page only the run's owner may see."""
    who = caller(request, db)
    if who is None:
        raise HTTPException(401, "a labeller's token or session is needed: open the URL that "
                                 "`selfalign label add` printed")
    if who.csrf is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, who.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
    if owner and not who.labeller.owner:
        raise HTTPException(403, "only the task's owner (`label add --owner`) sees this page")
    return who


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
