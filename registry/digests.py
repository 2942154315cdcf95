"""Digests: parsing, and running hashes whose state can be saved between requests.

An upload may continue on another worker or another app process, so the
running hash cannot live in memory. OpenSSL's low-level SHA256_CTX/SHA512_CTX
are plain public structs: their bytes are the whole state, and the same
assembly (SHA-NI, AVX2) as hashlib computes them. Where libcrypto can't be
loaded, `ResumableHash.load` returns None and callers re-hash the stored bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass

# algorithm -> (hex length, ctx size, Init, Update, Final, digest size)
_ALGORITHMS = {
    "sha256": (64, 112, "SHA256_Init", "SHA256_Update", "SHA256_Final", 32),
    "sha512": (128, 216, "SHA512_Init", "SHA512_Update", "SHA512_Final", 64),
}
SUPPORTED_ALGORITHMS = tuple(_ALGORITHMS)

# The spec's grammar: algorithm ":" encoded.
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class DigestError(ValueError):
    pass


class UnsupportedDigest(DigestError):
    pass


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: str) -> Digest:
    """A digest in the spec's grammar with an algorithm Hub supports, else DigestError."""
    if not _DIGEST_RE.match(value):
        raise DigestError(f"invalid digest {value[:200]!r}")
    algorithm, encoded = value.split(":", 1)
    if algorithm not in _ALGORITHMS:
        raise UnsupportedDigest(f"unsupported digest algorithm {algorithm[:50]!r}")
    hex_len = _ALGORITHMS[algorithm][0]
    if len(encoded) != hex_len or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise DigestError(f"invalid {algorithm} digest {value[:200]!r}")
    return Digest(algorithm, encoded)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _load_libcrypto() -> ctypes.CDLL | None:
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for _, _, init, update, final, _ in _ALGORITHMS.values():
                for fn in (init, update, final):
                    getattr(lib, fn).restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


_LIB = _load_libcrypto()


class ResumableHash:
    """A running sha256/sha512 whose state is a few hundred bytes that can be stored."""

    def __init__(self, algorithm: str = "sha256", state: bytes | None = None) -> None:
        if _LIB is None:
            raise RuntimeError("libcrypto is not available")
        hex_len, ctx_size, init, update, final, size = _ALGORITHMS[algorithm]
        self.algorithm = algorithm
        self._ctx = ctypes.create_string_buffer(ctx_size)
        self._update = getattr(_LIB, update)
        self._final = getattr(_LIB, final)
        self._size = size
        if state is None:
            getattr(_LIB, init)(self._ctx)
        else:
            if len(state) != ctx_size:
                raise ValueError("hash state of the wrong size")
            ctypes.memmove(self._ctx, state, ctx_size)

    @staticmethod
    def available() -> bool:
        return _LIB is not None

    @classmethod
    def load(cls, algorithm: str, state: bytes | memoryview | None) -> ResumableHash | None:
        # PostgreSQL hands binary columns back as memoryview.
        if _LIB is None or state is None:
            return None
        return cls(algorithm, bytes(state))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        if not n:
            return
        if isinstance(data, bytes):
            buf: object = data
        elif isinstance(data, bytearray) or not data.readonly:
            buf = (ctypes.c_char * n).from_buffer(data)  # no copy
        else:
            buf = bytes(data)
        self._update(self._ctx, buf, ctypes.c_size_t(n))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        # Final destroys the context: finish on a copy so the hash can go on.
        ctx = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(self._size)
        self._final(out, ctx)
        return out.raw.hex()

    def digest(self) -> str:
        return f"{self.algorithm}:{self.hexdigest()}"


class PlainHash:
    """hashlib, for when state need not (or cannot) be saved."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def state(self) -> None:
        return None

    def digest(self) -> str:
        return f"{self.algorithm}:{self._h.hexdigest()}"


def new_hash(algorithm: str = "sha256") -> ResumableHash | PlainHash:
    return ResumableHash(algorithm) if _LIB is not None else PlainHash(algorithm)
