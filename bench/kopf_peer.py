"""The kopf peer: the same injection written as a kopf user would write it, served by kopf.

A kopf operator's `@kopf.on.mutate` handler changes the ``patch`` object and kopf builds the
JSON patch itself, by a diff: ``Patch.as_json_patch`` deep-copies the body, applies the changes
and runs ``jsonpatch.JsonPatch.from_diff``. Here the handler calls this project's policy and
injection and hands kopf the injected Pod as a patch transformation, so the injected Pod is
exactly ours and only the machinery around it (aiohttp, kopf's handler execution, the diff)
is kopf's.

No cluster is needed: kopf's operator normally wires ``serve_admission_request`` to
``kopf.WebhookServer`` after discovering resources from the API server; this module does that
wiring itself with a registry holding the handler and insights that know Pods, the way
``kopf._core.reactor.running.spawn_tasks`` does it.

The handler is ``async def``: kopf runs a plain ``def`` handler in a thread pool, which is
slower; the async one is the faster of the two for kopf.

Run: python -m bench.kopf_peer --port P --cert-dir DIR --config FILE
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from kopf._cogs.structs import ephemera, references
from kopf._core.engines import admission, indexing
from kopf._core.reactor import inventory

from webhook.config import Config, load_config_file
from webhook.errors import Denied
from webhook.mutate import clip_warning
from webhook.policy import PodContext, decide, owner_kinds

PODS = references.Resource(group="", version="v1", plural="pods", kind="Pod", namespaced=True,
                           verbs=["create", "get", "list", "watch", "patch"])


def build_registry(config: Config) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.mutate("v1", "pods", id="mutate", operations=["CREATE"], registry=registry)
    async def inject_sidecars(body: Mapping[str, Any], patch: kopf.Patch, userinfo: Mapping[str, Any],
                              warnings: list[str], namespace: str | None, **_: Any) -> None:
        from webhook.inject import inject

        pod = dict(body)
        groups = userinfo.get("groups")
        context = PodContext(namespace=namespace or "", owner_kinds=owner_kinds(pod),
                             username=str(userinfo.get("username") or ""),
                             groups=tuple(str(g) for g in groups) if isinstance(groups, list) else ())
        try:
            decision = decide(pod, context, config)
        except Denied as error:
            raise kopf.AdmissionError(str(error), code=error.code) from None
        warnings.extend(clip_warning(w) for w in decision.warnings)
        if not decision.inject or decision.settings is None:
            return
        result = inject(pod, decision.settings)
        warnings.extend(clip_warning(w) for w in result.warnings)
        if result.changed:
            injected = result.pod
            # kopf applies this to its deep copy of the body, then diffs the two.
            patch.fns.append(lambda raw: raw.update(injected))

    return registry


async def serve(host: str, port: int, cert_dir: Path, config: Config) -> None:
    settings = kopf.OperatorSettings()
    registry = build_registry(config)
    insights = references.Insights()
    insights.webhook_resources.add(PODS)
    indexers = indexing.OperatorIndexers()
    webhookfn = functools.partial(admission.serve_admission_request, settings=settings, registry=registry,
                                  insights=insights, memories=inventory.ResourceMemories(),
                                  memobase=ephemera.AnyMemo(ephemera.Memo()), indices=indexers.indices)
    server = kopf.WebhookServer(addr=host, port=port, host=host, certfile=str(cert_dir / "tls.crt"),
                                pkeyfile=str(cert_dir / "tls.key"))
    async with server:
        async for client_config in server(webhookfn):
            print(f"kopf pid {os.getpid()} serving {client_config['url']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kopf_peer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config_file(args.config)
    try:
        import uvloop
        uvloop.install()  # the same event loop as the other servers
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port, args.cert_dir, config))


if __name__ == "__main__":
    main()
