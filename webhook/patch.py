"""RFC 6902 JSON Patch pieces the injection builder writes its ops with.

inject() records each change as the op that makes it, so no diff of the original and the
injected Pod is needed (a general diff such as jsonpatch.make_patch was most of a review's
CPU; even a linear one walked both trees). jsonpatch's RFC implementation applies every
patch in the tests and must give exactly the injected Pod.
"""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """JSON Pointer escaping (RFC 6901): '~' first, then '/'."""
    return token.replace("~", "~0").replace("/", "~1")
