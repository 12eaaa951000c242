"""Numba's on-disk cache for the simulators' kernels, stamped with all of their compiled sources.

Numba keys a cached function on its own file only, yet a kernel's compiled code includes every jitted function
it calls, from other modules too: after an edit to a callee, its callers would load stale machine code. Here a
function of this package is cached under a stamp of every module of the package that holds jitted code, so an
edit to any of them recompiles them all.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def sources_digest() -> bytes:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_bytes()
        if b"@njit" in text:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + text)
    return digest.digest()


class PackageStampLocator(caching.InTreeCacheLocator):
    """The in-tree cache (``__pycache__``) of this package's functions, stamped by :func:`sources_digest`."""

    def get_source_stamp(self) -> bytes:
        return sources_digest()

    @classmethod
    def from_function(cls, py_func: object, py_file: str) -> PackageStampLocator | None:
        if not Path(py_file).resolve().is_relative_to(PACKAGE):
            return None
        locator: PackageStampLocator | None = super().from_function(py_func, py_file)  # type: ignore[no-untyped-call]
        return locator


def install() -> None:
    """Put the locator first (numba falls back to its own when this package's folder is not writable)."""
    locators = caching.CacheImpl._locator_classes
    if PackageStampLocator not in locators:
        locators.insert(0, PackageStampLocator)
