"""Registry bearer tokens: short-lived ES256 JWTs holding exactly what was granted.

The registry verifies with one pinned public key and one algorithm, so neither
`alg: none` nor a key named inside the token can be slipped in.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKeys:
    private: ec.EllipticCurvePrivateKey
    public: ec.EllipticCurvePublicKey
    kid: str


def _generate_key_file(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several processes start at once, the first one's key wins.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


@lru_cache(maxsize=1)
def signing_keys() -> SigningKeys:
    pem = settings.HUB_TOKEN_PRIVATE_KEY
    if not pem:
        path = Path(settings.DATA_DIR) / "token-signing-key.pem"
        if not path.exists():
            _generate_key_file(path)
        for _ in range(50):  # another process may be writing it right now
            pem = path.read_text()
            if "END PRIVATE KEY" in pem:
                break
            time.sleep(0.02)
    try:
        private = serialization.load_pem_private_key(pem.encode(), password=None)
    except ValueError as exc:
        raise ImproperlyConfigured(f"HUB_TOKEN_PRIVATE_KEY: not a PEM private key ({exc})") from exc
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ImproperlyConfigured("HUB_TOKEN_PRIVATE_KEY must be an EC P-256 key (for ES256)")
    public = private.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKeys(private, public, hashlib.sha256(der).hexdigest()[:16])


def issue(
    *,
    subject: str,
    subject_key: str,
    audience: str,
    access: list[dict[str, Any]],
    auth_method: str,
    token_id: int | None = None,
) -> tuple[str, int]:
    """A signed token and its lifetime in seconds."""
    keys = signing_keys()
    now = int(time.time())
    ttl = int(settings.HUB_TOKEN_TTL)
    claims = {
        "iss": settings.HUB_TOKEN_ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(12),
        "access": access,
        "hub": {"key": subject_key, "auth": auth_method, "tid": token_id},
    }
    token = jwt.encode(claims, keys.private, algorithm=ALGORITHM, headers={"kid": keys.kid})
    return token, ttl


class InvalidToken(Exception):
    pass


# Verified tokens by their exact text: a worker sees the same token many times a
# second during a pull, and re-checking a signature it already checked buys nothing.
_verified: dict[str, dict[str, Any]] = {}
_verified_lock = threading.Lock()
_VERIFIED_MAX = 4096


def verify(token: str) -> dict[str, Any]:
    now = time.time()
    claims = _verified.get(token)
    if claims is not None and claims["exp"] > now:
        return claims
    try:
        claims = jwt.decode(
            token,
            signing_keys().public,
            algorithms=[ALGORITHM],
            audience=settings.HUB_TOKEN_SERVICE,
            issuer=settings.HUB_TOKEN_ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if not isinstance(claims.get("access"), list):
        raise InvalidToken("token has no access list")
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[token] = claims
    return claims


def granted_from_claims(claims: dict[str, Any]) -> dict[str, frozenset[str]]:
    granted: dict[str, frozenset[str]] = {}
    for entry in claims.get("access", []):
        if isinstance(entry, dict) and entry.get("type") == "repository":
            name, actions = entry.get("name"), entry.get("actions")
            if isinstance(name, str) and isinstance(actions, list):
                # A client may ask for one repository in several scopes (pull,push, then
                # delete): the token holds all of them, as in distribution.
                held = frozenset(a for a in actions if isinstance(a, str))
                granted[name] = granted.get(name, frozenset()) | held
    return granted


def holds_catalog(claims: dict[str, Any]) -> bool:
    """Whether the token may list the catalog (`registry:catalog:*`)."""
    return any(
        isinstance(entry, dict)
        and entry.get("type") == "registry"
        and entry.get("name") == "catalog"
        and "*" in (entry.get("actions") or ())
        for entry in claims.get("access", [])
    )
