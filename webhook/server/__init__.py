"""The HTTPS edge: everything between the socket and the pure core's ``mutate.review``.

The ASGI app and its /mutate fast path (``app``, ``answer``), what a review body is decoded to
(``review_decode``) and the cache of identical reviews (``review_cache``), the deadline, the
connection bounds and write coalescing, TLS and certificate generation, metrics, logging, and
the uvicorn runner with its reloaders and worker supervisor. Nothing here decides what a Pod
gets: that is the core's (``webhook.mutate``). See docs/architecture.md.
"""
