"""scripts/image_archive.py and the local cluster's images: `docker save` archives that
containerd, skopeo and docker load (the format is checked here; loading them into the local
cluster's containerd is what the e2e suite does)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from image_archive import write_archive  # noqa: E402


def _layer(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _read(archive: Path) -> tuple[list[dict], dict, dict[str, bytes]]:
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(members["manifest.json"])
    config = json.loads(members[manifest[0]["Config"]])
    return manifest, config, members


def test_archive_is_a_docker_save_tarball(tmp_path: Path) -> None:
    layer = _layer(tmp_path / "layer.tar", {"bin/hello": b"#!/bin/sh\necho hi\n"})
    config = {"Entrypoint": ["/bin/hello"], "User": "65532:65532"}
    image_id = write_archive(tmp_path / "out.tar", "localhost/test:1", layer, config, "test")
    manifest, image, members = _read(tmp_path / "out.tar")
    assert manifest == [{"Config": f"{image_id}.json", "RepoTags": ["localhost/test:1"],
                         "Layers": [f"{hashlib.sha256(layer.read_bytes()).hexdigest()}/layer.tar"]}]
    assert hashlib.sha256(members[f"{image_id}.json"]).hexdigest() == image_id  # the ID is the config's digest
    assert image["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer.read_bytes()).hexdigest()}"]}
    assert image["config"] == config
    assert image["os"] == "linux" and image["architecture"]
    assert members[manifest[0]["Layers"][0]] == layer.read_bytes()


def test_archive_is_deterministic(tmp_path: Path) -> None:
    layer = _layer(tmp_path / "layer.tar", {"a": b"1"})
    first = write_archive(tmp_path / "one.tar", "x/y:1", layer, {"Cmd": ["a"]}, "test")
    second = write_archive(tmp_path / "two.tar", "x/y:1", layer, {"Cmd": ["a"]}, "test")
    assert first == second
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert write_archive(tmp_path / "three.tar", "x/y:1", layer, {"Cmd": ["b"]}, "test") != first


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed (apt-get install busybox-static)")
def test_local_cluster_busybox_image_has_every_applet(tmp_path: Path) -> None:
    pause = tmp_path / "pause"
    pause.write_bytes(b"\x7fELF-not-really")
    subprocess.run([sys.executable, str(REPO / "scripts" / "local-cluster" / "images.py"), str(tmp_path / "out"),
                    shutil.which("busybox"), str(pause), "localhost/t/busybox:1", "localhost/t/pause:1"], check=True)
    manifest, image, members = _read(tmp_path / "out" / "busybox.tar")
    assert manifest[0]["RepoTags"] == ["localhost/t/busybox:1"]
    with tarfile.open(fileobj=io.BytesIO(members[manifest[0]["Layers"][0]])) as layer:
        names = {m.name: m for m in layer.getmembers()}
    for applet in ("bin/sh", "bin/sleep", "sbin/adjtimex", "bin/ps", "usr/sbin/httpd"):
        assert names[applet].issym() and names[applet].linkname == "/bin/busybox", applet
    assert names["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 for m in names.values())
    _, pause_image, _ = _read(tmp_path / "out" / "pause.tar")
    assert pause_image["config"]["Entrypoint"] == ["/pause"]
