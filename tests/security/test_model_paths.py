"""Model versions carry no absolute path of this machine (trust issue): a real Cox-PASNet training
through the job path (queue -> worker -> job process -> registry), with a user's GMT file added from
a folder outside the workspace, writes a version folder (manifest, model.json, model card, metrics,
rankings) in which neither the workspace folder, the user's home, the GMT's original folder nor this
checkout's folder appears; the readers (registry, model loading, stored rankings) still work."""

from __future__ import annotations

import json
from pathlib import Path

from pathviz.genomics import GeneSetLibrary, default_library
from pathviz.genomics.genesets import write_gmt
from pathviz.jobs.coxpasnet import add_user_gmt, rank_model
from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import Worker
from pathviz.risk.coxpasnet import CoxPASNetModel
from pathviz.store.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]


def _machine_paths(tmp_path: Path, *extra: Path) -> list[str]:
    out = {str(tmp_path), str(tmp_path.resolve()), str(ROOT), *(str(p) for p in extra)}
    home = str(Path.home())
    if home not in ("", "/"):
        out.add(home + "/")
    return sorted(out)


def _leaks(folder: Path, needles: list[str]) -> list[str]:
    found = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{p.name}: {n}" for n in needles if n.encode() in data]
    return found


def _submit(q, kind: str, params: dict):
    """Submit as the system where the queue asks who submits (``actor``)."""
    import inspect

    if "actor" in inspect.signature(q.submit).parameters:
        from pathviz.auth.policy import SYSTEM

        return q.submit(kind, params, actor=SYSTEM)
    return q.submit(kind, params)


def test_trained_version_names_no_absolute_path(ws, tmp_path):
    # a user's GMT outside the workspace (a small KEGG subset keeps the training short)
    kegg = default_library("kegg").filter_size()
    src = write_gmt(GeneSetLibrary(kegg.sets[:60], "subset"), tmp_path / "user-home" / "Downloads" / "my_sets.gmt")
    added = add_user_gmt(ws, None, str(src))
    q = JobQueue(ws.db, ws.home)
    job = _submit(q, "coxpasnet", {"cohort": "gse4335", "genesets": str(added), "repeats": 1})
    assert Worker(ws).run(once=True) == 1
    job = q.get(job.id)
    assert job.status == "succeeded", job.error
    reg = ModelRegistry(ws.models_dir)
    man = reg.get(job.result["model"])
    folder = reg.path(man.ref)  # verifies every file against the manifest
    assert {"manifest.json", "model.json", "MODEL_CARD.md", "metrics.json", "weights.pt"} <= {p.name for p in folder.iterdir()}
    assert _leaks(folder, _machine_paths(tmp_path, src.parent, ws.home)) == []
    # names instead: the GMT relative to the workspace with its digest, the gene-set source by file name
    assert man.params["genesets"] == "genesets/my_sets.gmt"
    assert "sha256" in man.card["gene_sets"]
    assert json.loads((folder / "model.json").read_text())["gene_set_source"] == "my_sets.gmt"
    # the readers still work
    model = CoxPASNetModel.load(folder)
    assert model.library.source == "my_sets.gmt" and model.pathways_
    ranked = rank_model(folder)
    assert ranked["metrics"]["cohort"] == "gse4335" and len(ranked["pathways"]) > 0


def test_manifest_fields_are_made_relative(ws, tmp_path):
    """Whatever a caller passes (a workspace path, a home path), the manifest keeps a name."""
    def write(folder: Path) -> dict:
        (folder / "weights.pt").write_bytes(b"w")
        (folder / "model.json").write_text("{}")
        return {"source": str(ws.home / "cohorts" / "mine" / "clinical.csv")}

    reg = ModelRegistry(ws.models_dir)
    man = reg.create_version("coxpasnet", "m", write, cohort=str(ws.home / "cohorts" / "mine"),
                             params={"genesets": str(ws.home / "genesets" / "h.gmt")},
                             card={"data": f"from {Path.home() / 'data' / 'x.csv'}"})
    assert man.params["genesets"] == "genesets/h.gmt" and man.cohort == "cohorts/mine"
    assert man.metrics["source"] == "cohorts/mine/clinical.csv" and man.card["data"] == "from ~/data/x.csv"
    assert _leaks(reg.path(man.ref), _machine_paths(tmp_path, ws.home)) == []
