"""The built-in job kinds: training each registered model kind, and the demo build.

A training job's parameters are the model kind's declared parameters
(:data:`pathviz.store.registry.ModelKind.params`) plus the cohort; the admin page generates its
forms from them and ``pathviz jobs submit KIND --cohort NAME --param key=value`` checks against
them. Each run registers a new immutable registry version and returns its reference.
"""

from __future__ import annotations

from pathlib import Path

from pathviz.cohort.demo import DEMO_PATIENTS, DEMO_SEED
from pathviz.jobs.queue import JobContext, JobKind, register_job_kind
from pathviz.store.registry import model_kinds


def _coxpasnet_cohorts() -> list[str]:
    from pathviz.jobs.coxpasnet import cohorts_with_omics

    return cohorts_with_omics()


def _pagenet_cohorts() -> list[str]:
    from pathviz.cohort import available_cohorts
    from pathviz.risk.stratify import cohort_has_slides_and_omics

    return [c for c in available_cohorts() if cohort_has_slides_and_omics(c)]


SHIPPED_LIBRARIES = ("kegg", "go_bp")


def genesets_choices(home) -> list[str]:
    """Gene-set libraries a training job may use: the shipped ones and the GMT files added to the
    workspace (``$PATHVIZ_HOME/genesets/``, checked when added)."""
    folder = Path(home) / "genesets"
    return [*SHIPPED_LIBRARIES, *(str(p) for p in sorted(folder.glob("*.gmt")))] if folder.exists() else list(SHIPPED_LIBRARIES)


def _check_coxpasnet(params: dict) -> None:
    """Only shipped libraries or GMT files inside the workspace: a job never reads an arbitrary
    server path (add your own GMT first: the pathway page, or ``pathviz train --genesets FILE``
    copies it in)."""
    from pathviz.errors import PathVizError
    from pathviz.jobs.coxpasnet import load_library
    from pathviz.settings import Settings

    home = Settings.from_env().home
    name = params["genesets"]
    if name not in SHIPPED_LIBRARIES:
        path = Path(name).resolve()
        if not path.is_relative_to((home / "genesets").resolve()) or not path.is_file():
            raise PathVizError(f"Gene-set library {name!r} is neither shipped ({', '.join(SHIPPED_LIBRARIES)}) nor a GMT "
                               "file added to this workspace.",
                               "add the file first (pathway page: Load your own GMT; CLI: pathviz train coxpasnet "
                               "--genesets FILE copies it in), then choose it.")
        params["genesets"] = str(path)
    load_library(params["genesets"], params["min_size"], params["max_size"])  # a clear error for a bad GMT now
    if params.get("endpoint"):  # an unknown endpoint is refused at submission, naming the cohort's keys
        from pathviz.cohort import load_cohort_endpoint

        load_cohort_endpoint(params["cohort"], params["endpoint"])


def _run_coxpasnet(ctx: JobContext) -> dict:
    from pathviz.jobs.coxpasnet import train_registered_coxpasnet

    p = ctx.params
    man, _, metrics = train_registered_coxpasnet(ctx.workspace.models_dir, p["cohort"], p["genesets"], seed=p["seed"],
                                                 repeats=p["repeats"], min_size=p["min_size"], max_size=p["max_size"],
                                                 min_coverage=p["min_coverage"], progress=ctx.progress,
                                                 missing_omics=p["missing_omics"], endpoint=p["endpoint"])
    held = metrics.get("held_out") or {}
    return {"model": man.ref, "c_index": held.get("c_index"), "ci": [held.get("lower"), held.get("upper")]}


def _run_pagenet(ctx: JobContext) -> dict:
    from pathviz.jobs.pagenet import train_registered_pagenet

    p = ctx.params
    man = train_registered_pagenet(ctx.workspace, p["cohort"], seed=p["seed"], epochs_cnn=p["epochs_cnn"], progress=ctx.progress)
    held = man.metrics.get("held_out") or {}
    return {"model": man.ref, "c_index": held.get("c_index"), "ci": [held.get("lower"), held.get("upper")]}


def _slide_cohorts() -> list[str]:
    from pathviz.cohort import available_cohorts, load_cohort

    out = []
    for c in available_cohorts():
        try:
            if "slides" not in load_cohort(c).missing_modalities():
                out.append(c)
        except Exception:  # noqa: BLE001 - a broken cohort is not offered (the cohort page names its problem)
            continue
    return out


def weights_dir(home) -> Path:
    """Where encoder weights files live: ``$PATHVIZ_HOME/weights/`` (a job reads no other path)."""
    return Path(home) / "weights"


def _check_mil(params: dict) -> None:
    """The encoder must exist and a weights file must be one added to this workspace
    (``pathviz train mil --weights FILE`` copies it in after checking it is a plain state dict)."""
    from pathviz.errors import PathVizError
    from pathviz.nn.encoders import _builder
    from pathviz.settings import Settings

    _builder(params["encoder"])
    if params.get("weights"):
        home = Settings.from_env().home
        path = Path(params["weights"])
        path = (weights_dir(home) / path).resolve() if not path.is_absolute() else path.resolve()
        if not path.is_relative_to(weights_dir(home).resolve()) or not path.is_file():
            raise PathVizError(f"Weights file {params['weights']!r} is not a file added to this workspace.",
                               "add it first: pathviz train mil --cohort NAME --weights FILE copies it into "
                               f"{weights_dir(home)}; then name it here.")
        params["weights"] = str(path)


def _run_attention_mil(ctx: JobContext) -> dict:
    return _run_mil(ctx, "attention_mil")


def _run_crossattn(ctx: JobContext) -> dict:
    return _run_mil(ctx, "crossattn")


def _run_mil(ctx: JobContext, kind: str) -> dict:
    from pathviz.jobs.mil import train_registered_mil

    p = ctx.params
    man = train_registered_mil(ctx.workspace, p["cohort"], kind, seed=p["seed"], encoder=p["encoder"],
                               weights=p["weights"] or None, bag_size=p["bag_size"], progress=ctx.progress)
    held = man.metrics.get("held_out") or {}
    return {"model": man.ref, "c_index": held.get("c_index"), "ci": [held.get("lower"), held.get("upper")]}


def _run_demo(ctx: JobContext) -> dict:
    from pathviz.jobs.demo import build_demo

    p = ctx.params
    ids = build_demo(ctx.workspace, ctx.progress, cohort_seed=p["cohort_seed"], patients=p["patients"])
    return {"slides": ids, "cohort_seed": p["cohort_seed"], "patients": p["patients"]}


def _run_verify_models(ctx: JobContext) -> dict:
    from pathviz.store.registry import ModelRegistry, RegistryError

    reg = ModelRegistry(ctx.workspace.models_dir)
    versions = reg.versions()
    bad = []
    for i, m in enumerate(versions):
        ctx.progress(i / max(1, len(versions)), f"checking {m.ref}")
        try:
            reg.verify(m)
        except RegistryError as exc:
            bad.append(str(exc))
    return {"checked": len(versions), "problems": bad}


_kinds = model_kinds()
register_job_kind(JobKind("coxpasnet", "Train Cox-PASNet (genes -> pathways -> Cox) on a cohort with expression",
                          _run_coxpasnet, _kinds["coxpasnet"].params, _coxpasnet_cohorts, "coxpasnet", _check_coxpasnet,
                          {"genesets": genesets_choices}))
register_job_kind(JobKind("pagenet", "Train PAGE-Net (slides + expression + age) on a cohort with slides and expression",
                          _run_pagenet, _kinds["pagenet"].params, _pagenet_cohorts, "pagenet"))
register_job_kind(JobKind("attention_mil", "Train gated attention MIL (patch features -> attention -> Cox) on a cohort "
                          "with slides", _run_attention_mil, _kinds["attention_mil"].params, _slide_cohorts, "attention_mil",
                          _check_mil))
register_job_kind(JobKind("crossattn", "Train RNA-to-patch cross-attention (seed 003) on a cohort with slides and "
                          "expression", _run_crossattn, _kinds["crossattn"].params, _pagenet_cohorts, "crossattn", _check_mil))
register_job_kind(JobKind("demo", "Build the demo workspace (slides, demo cohort, PAGE-Net)", _run_demo,
                          {"cohort_seed": {"default": DEMO_SEED, "min": 0, "max": 1_000_000,
                                           "help": "cohort seed of the demo cohort (0 = the development seed)"},
                           "patients": {"default": DEMO_PATIENTS, "min": 20, "max": 5000,
                                        "help": "patients of the demo cohort (the benchmark uses 500)"}}))
register_job_kind(JobKind("verify_models", "Check every registered version's files against their SHA-256", _run_verify_models))
