"""The HTTPS edge: everything between the socket and the pure core's ``mutate.review``.

The ASGI app (``app``) and what a /mutate body is answered (``answers``): the fields a review
is decoded to (``review_decode``), the cache of identical reviews (``review_cache``) and the
deadline (``deadline``); the connection bounds and write coalescing (``connections``,
``coalescing``); TLS (``tls``; certificates are made by ``webhook.pki``); metrics and logging; and
the uvicorn runner (``runner``) with its options, reloaders, sockets and worker supervisor.
Nothing here decides what a Pod gets: that is the core's. See docs/architecture.md.
"""
