"""The Dockerfile and .dockerignore: pinned multi-stage build, non-root, no secrets in the image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENTRYPOINT = ["sidecar-injector", "serve"]
FORBIDDEN_SOURCES = re.compile(r"(\.key$|(^|/)certs(/|$)|(^|/)\.env($|\.)|id_rsa|\.pem$|\.p12$)")


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions, with `\\` continuations joined and comments dropped."""
    result: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    assert not buffer, "Dockerfile ends inside a line continuation"
    return result


def _stages(instructions: list[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            assert instruction.keyword == "ARG", f"line {instruction.line}: {instruction.keyword} before FROM"
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(_instructions(DOCKERFILE.read_text()))


def _copy_sources(instruction: Instruction) -> list[str]:
    args = instruction.args
    if args.startswith("["):
        words = json.loads(args)
    else:
        words = args.split()
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def test_multi_stage(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    names = [s.name for s in stages[:-1]]
    assert all(names), "every non-final stage is named"
    # The final stage copies from an earlier stage rather than building in place.
    copies = [i for i in stages[-1].instructions if i.keyword == "COPY"]
    assert any("--from=" in i.args for i in copies)


def test_base_images_are_pinned(stages: list[Stage]) -> None:
    stage_names = {s.name for s in stages if s.name}
    for stage in stages:
        image = stage.image
        if image in stage_names:
            continue
        assert "$" not in image, f"{image}: base images are literal, not build args"
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{image}: no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{image}: tag is not a version"


def test_final_stage_runs_as_numeric_non_root(stages: list[Stage]) -> None:
    users = [i.args for i in stages[-1].instructions if i.keyword == "USER"]
    assert users, "the final stage sets USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, users[-1]
    if group:
        assert group.isdigit() and int(group) != 0, users[-1]
    assert users[-1] == "65532:65532", "matches runAsUser/runAsGroup in manifests/base/deployment.yaml"


def test_entrypoint_is_exec_form(stages: list[Stage]) -> None:
    entrypoints = [i.args for i in stages[-1].instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoints, "the final stage sets ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ENTRYPOINT
    assert not [i for i in stages[-1].instructions if i.keyword == "CMD"], "no CMD appended to the entrypoint"


def test_exposes_8443(stages: list[Stage]) -> None:
    exposed = [i.args for i in stages[-1].instructions if i.keyword == "EXPOSE"]
    assert any(re.fullmatch(r"8443(/tcp)?", p) for args in exposed for p in args.split())


def test_no_secrets_copied(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword in ("COPY", "ADD"):
                assert instruction.keyword != "ADD", f"line {instruction.line}: use COPY"
                for source in _copy_sources(instruction):
                    assert not FORBIDDEN_SOURCES.search(source.rstrip("/")), f"line {instruction.line}: {source}"
                    assert source not in (".", "./", "*"), f"line {instruction.line}: copies the whole context"
            if instruction.keyword in ("ENV", "ARG"):
                assert not re.search(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)", instruction.args, re.I), instruction


# --------------------------------------------------------------------------- .dockerignore


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) in file order, with Docker's semantics: `*` and `?` stay within a
    path segment, `**` spans segments, and a pattern matching a directory excludes its contents."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def _ignored(path: str) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, pattern in _dockerignore_patterns():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        "certs/tls.key",
        "certs/tls.crt",
        "certs/ca.crt",
        "server.key",
        "webhook/leaked.key",
        "manifests/base/tls.pem",
        "manifests/certs/tls.crt",
        ".git/config",
        ".venv/bin/python",
        "tests/test_render.py",
        ".env",
        "webhook/.env",
        "id_rsa",
        "webhook/__pycache__/render.cpython-311.pyc",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert _ignored(path), f"{path} would be sent to the Docker build context"


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "webhook/__init__.py", "webhook/tools/render.py",
     "webhook/pki.py",  # certificates made at run time, not key material
     "manifests/base/deployment.yaml"],
)
def test_dockerignore_keeps_build_inputs(path: str) -> None:
    assert not _ignored(path), f"{path} is needed by the build"


def test_copied_sources_exist_and_are_not_ignored(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword != "COPY" or "--from=" in instruction.args:
                continue
            for source in _copy_sources(instruction):
                assert (ROOT / source).exists(), f"line {instruction.line}: {source} does not exist"
                assert not _ignored(source.rstrip("/")), f"line {instruction.line}: {source} is in .dockerignore"


# --------------------------------------------------------------------------- build


def _docker_works() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_image_builds_and_runs_as_non_root() -> None:
    if not _docker_works():
        pytest.skip("no Docker engine")
    tag = "sidecar-injector:test-dockerfile"
    build = subprocess.run(
        ["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800, check=False
    )
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        inspect = subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, text=True, timeout=60, check=True
        )
        config = json.loads(inspect.stdout)[0]["Config"]
        assert config["User"] == "65532:65532"
        assert config["Entrypoint"] == ENTRYPOINT
        listing = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "sh", tag, "-c", "ls -A /app; find / -xdev -name '*.key'"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert listing.stdout.strip() == "", f"unexpected files in the image:\n{listing.stdout}"
        run = subprocess.run(
            ["docker", "run", "--rm", "--read-only", tag, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=120, check=False)
