#!/usr/bin/env python3
"""Build the local cluster's two container images as `docker save` archives, without a registry.

No image registry is reachable here, so the test images are made from Debian files:
- busybox: one layer with the static busybox binary and a link to it for every applet
  (sh, sleep, wget, nc, ps, adjtimex...), /etc/passwd and /etc/group, a sticky /tmp;
- pause: the sandbox's PID 1, built from the Kubernetes tree by build.sh.
The archives (scripts/image_archive.py) are deterministic (fixed mtimes and owners), so a
rebuild gives the same image IDs and `ctr images import` of an unchanged image is a no-op.

Usage: images.py OUT_DIR BUSYBOX_BINARY PAUSE_BINARY BUSYBOX_REF PAUSE_REF
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from image_archive import write_archive  # noqa: E402  (scripts/image_archive.py)

MTIME = 0


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "root", "root"
    return info


class Layer:
    """An uncompressed layer tar, built in memory (a few MB)."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buffer, mode="w", format=tarfile.USTAR_FORMAT)
        self._dirs: set[str] = set()

    def directory(self, path: str, mode: int = 0o755) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            name = "/".join(parts[:depth])
            if name not in self._dirs:
                self._dirs.add(name)
                last = depth == len(parts)
                self._tar.addfile(_info(name + "/", tarfile.DIRTYPE, mode if last else 0o755))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._parent(path)
        self._tar.addfile(_info(path.strip("/"), tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

    def symlink(self, path: str, target: str) -> None:
        self._parent(path)
        self._tar.addfile(_info(path.strip("/"), tarfile.SYMTYPE, 0o777, link=target))

    def _parent(self, path: str) -> None:
        parent = str(Path(path.strip("/")).parent)
        if parent != ".":
            self.directory(parent)

    def close(self) -> bytes:
        self._tar.close()
        return self._buffer.getvalue()


def busybox_layer(binary: Path) -> bytes:
    layer = Layer()
    layer.file("bin/busybox", binary.read_bytes(), 0o755)
    applets = subprocess.run([str(binary), "--list-full"], check=True, capture_output=True, text=True).stdout
    for applet in sorted(set(applets.split())):
        if applet != "bin/busybox":
            layer.symlink(applet, "/bin/busybox")
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.directory("root", 0o700)
    layer.directory("tmp", 0o1777)
    layer.directory("var/www")
    layer.file("var/www/index.html", b"<html><body>local-cluster busybox</body></html>\n")
    return layer.close()


def pause_layer(binary: Path) -> bytes:
    layer = Layer()
    layer.file("pause", binary.read_bytes(), 0o755)
    return layer.close()


def _archive(out: Path, reference: str, layer: bytes, config: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        layer_file = Path(scratch) / "layer.tar"
        layer_file.write_bytes(layer)
        write_archive(out, reference, layer_file, config, "scripts/local-cluster/images.py")


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    out, busybox, pause, busybox_ref, pause_ref = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3], argv[4]
    path_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    _archive(out / "busybox.tar", busybox_ref, busybox_layer(busybox), {"Cmd": ["sh"], "Env": path_env})
    _archive(out / "pause.tar", pause_ref, pause_layer(pause), {"Entrypoint": ["/pause"], "Env": path_env})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
