#!/usr/bin/env python3
"""Write a one-layer container image as a `docker save` archive, without Docker or a registry.

`ctr images import`, `skopeo copy docker-archive:...` and `docker load` all read this format,
so an image made here loads into containerd (the local cluster's, a kind node's) or pushes to
any registry with standard tools. The archive is deterministic: the same layer and config
give the same image ID.

Usage: image_archive.py OUT.tar REFERENCE LAYER.tar CONFIG.json
  CONFIG.json: the image config's `config` object (Entrypoint, Cmd, Env, User, WorkingDir,
  ExposedPorts, Labels); architecture and os are this machine's.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import sys
import tarfile
from pathlib import Path
from typing import Any

_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
EPOCH = "1970-01-01T00:00:00Z"


def _entry(name: str, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_archive(out: Path, reference: str, layer: Path, config: dict[str, Any], created_by: str) -> str:
    """Write the archive; returns the image ID (sha256 of its config)."""
    diff_id = _sha256(layer)
    machine = platform.machine()
    image = {"architecture": _ARCHITECTURES.get(machine, machine), "os": "linux", "created": EPOCH,
             "config": config, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
             "history": [{"created": EPOCH, "created_by": created_by}]}
    image_bytes = json.dumps(image, sort_keys=True).encode()
    image_id = hashlib.sha256(image_bytes).hexdigest()
    layer_name = f"{diff_id}/layer.tar"
    manifest = json.dumps([{"Config": f"{image_id}.json", "RepoTags": [reference], "Layers": [layer_name]}]).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(f"{image_id}.json", tarfile.REGTYPE, len(image_bytes)), io.BytesIO(image_bytes))
        tar.addfile(_entry(f"{diff_id}/", tarfile.DIRTYPE))
        with layer.open("rb") as stream:
            tar.addfile(_entry(layer_name, tarfile.REGTYPE, layer.stat().st_size), stream)
        tar.addfile(_entry("manifest.json", tarfile.REGTYPE, len(manifest)), io.BytesIO(manifest))
    partial.replace(out)
    return image_id


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, reference, layer, config = Path(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    image_id = write_archive(out, reference, layer, json.loads(config.read_text()), "scripts/build-image.sh")
    print(f"sha256:{image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
