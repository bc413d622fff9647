"""Issue 12, the remaining parts: slide files linked to a registered cohort's patients (TCGA
barcode or a mapping CSV), the coverage record (who has RNA, slides, each field), TCGA-CDR
endpoints, and training Cox-PASNet on a chosen endpoint through the job kind.

Fixtures are written by each test in the real layouts: TCGA slide names such as
``TCGA-BR-6452-01Z-00-DX1.<uuid>.svs`` (only names matter: linking never opens a slide)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pathviz.auth.policy import operator
from pathviz.cli import main
from pathviz.cohort import CohortError, endpoint_model_name, load_cohort, load_cohort_endpoint
from pathviz.cohort.loaders import load_tcga
from pathviz.cohort.registry import CohortRegistry
from pathviz.cohort.slides import coverage, link_slides, tcga_patient_barcode

IDS = [f"TCGA-BR-{6400 + i}" for i in range(150)]
GENES = [f"G{i}" for i in range(40)]


def _tcga_folder(root, cdr: bool = True, rna_for: int = 150, seed: int = 0):
    """A TCGA-layout folder (clinical.csv + rna.csv.gz z-scores) with a planted risk in G0..G7,
    and TCGA-CDR progression-free interval columns (PFI, PFI.time in days) when ``cdr``."""
    rng = np.random.default_rng(seed)
    folder = root / "brx"
    folder.mkdir(parents=True)
    omics = pd.DataFrame(rng.normal(size=(len(IDS), len(GENES))), index=pd.Index(IDS, name="patient_id"), columns=GENES)
    lp = omics[GENES[:8]].mean(axis=1).to_numpy() * np.sqrt(8)
    t, c = rng.exponential(30 * np.exp(-lp)), rng.uniform(10, 80, len(IDS))
    clin = pd.DataFrame({"patient_id": IDS, "time_months": np.minimum(t, c).round(2), "event": (t <= c).astype(int),
                         "age": rng.normal(60, 10, len(IDS)).round(1), "stage": rng.choice(["I", "II", "III"], len(IDS)),
                         "site": rng.choice(["BR", "CD"], len(IDS))})
    if cdr:
        pt = np.minimum(rng.exponential(20 * np.exp(-lp)), c)
        clin["PFI.time"] = (pt * 30.4375).round()
        clin["PFI"] = (pt < c).astype(int).astype(object)
        clin.loc[:3, "PFI"] = "#N/A"  # four patients without the endpoint
    clin.to_csv(folder / "clinical.csv", index=False)
    omics.iloc[:rna_for].to_csv(folder / "rna.csv.gz")
    return folder


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a real slide: linking reads names only")
    return path


def test_tcga_barcode_of_slide_names():
    assert tcga_patient_barcode("TCGA-br-6452-01Z-00-DX1.8c3a.svs") == "TCGA-BR-6452"
    assert tcga_patient_barcode("/data/x/TCGA-BR-6452-11A-01-TS1.svs") == "TCGA-BR-6452"
    assert tcga_patient_barcode("P001.tif") is None and tcga_patient_barcode("TCGA-BR-64.svs") is None


def test_slides_linked_by_barcode_diagnostic_first_and_unmatched_named(ws, tmp_path, capsys):
    folder = _tcga_folder(tmp_path, rna_for=100)
    slides = tmp_path / "slides"
    dx = _touch(slides / f"{IDS[0]}-01Z-00-DX1.AB12.svs")
    _touch(slides / "frozen" / f"{IDS[0]}-01A-01-TS1.CD34.svs")  # a frozen section of the same patient
    for pid in IDS[1:10]:
        _touch(slides / f"{pid}-01Z-00-DX1.svs")
    stray = _touch(slides / "TCGA-ZZ-0001-01Z-00-DX1.svs")  # no such patient
    _touch(slides / "notes.txt")
    _touch(slides / ".trash" / f"{IDS[20]}-01Z-00-DX1.svs")  # hidden folders are not searched
    assert main(["cohort", "add", str(folder), "--format", "tcga", "--name", "brx", "--slides", str(slides)]) == 0
    out = capsys.readouterr().out
    assert "slides: 10 of 150 patients linked by file name (11 of 12 slide files in" in out and "1 file matches no patient" in out
    c = load_cohort("brx")
    assert c.clinical.at[IDS[0], "slide"] == str(dx)  # -DX (FFPE diagnostic) before -TS (frozen)
    assert c.slide_links.by_patient[IDS[0]][1].endswith("TS1.CD34.svs")
    assert c.slide_links.unmatched == [str(stray)]
    assert c.clinical["slide"].notna().sum() == 10 and "slide" not in c.clinical_covariates()
    cov = coverage(c, [f"{IDS[1]}-01Z-00-DX1.svs", "other.png"])
    assert (cov["with_rna"], cov["without_rna"], cov["with_slides"], cov["without_slides"]) == (100, 50, 10, 140)
    assert cov["with_rna_and_slides"] == 10 and cov["workspace_slides"] == 1
    fields = {f["field"]: f for f in cov["fields"]}
    assert fields["slide"]["kind"] == "identifier" and fields["slide"]["present"] == 10
    assert fields["pfi_event"]["kind"] == "outcome" and fields["pfi_event"]["missing"] == 4
    assert fields["age"]["kind"] == "covariate"
    assert main(["cohort", "show", "brx", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["with_slides"] == 10 and shown["without_rna"] == 50 and shown["workspace_slides"] == 0


def test_slides_linked_by_mapping_csv_and_its_errors(ws, tmp_path):
    folder = _tcga_folder(tmp_path)
    slides = tmp_path / "scans"
    for i in range(3):
        _touch(slides / f"scan_{i:04d}.ndpi")
    _touch(slides / "scan_extra.ndpi")
    mapping = tmp_path / "map.csv"
    pd.DataFrame({"slide": ["scan_0000.ndpi", "scan_0001.ndpi", "scans/scan_0002.ndpi"],
                  "patient_id": [IDS[5], IDS[5], IDS[7]]}).to_csv(mapping, index=False)
    links = link_slides(IDS, slides, mapping)
    assert links.how == "mapping" and sorted(links.by_patient) == [IDS[5], IDS[7]]
    assert len(links.by_patient[IDS[5]]) == 2 and [p.rsplit("/", 1)[-1] for p in links.unmatched] == ["scan_extra.ndpi"]
    reg = CohortRegistry(ws.db, ws.audit)
    c = reg.add(operator(), folder, "tcga", name="brx_map", options={"slides": str(slides), "slide_map": str(mapping)})
    assert c.clinical["slide"].notna().sum() == 2
    # a mapping naming a file that is not there, a slide listed twice, missing columns: refused, nothing stored
    pd.DataFrame({"slide": ["scan_9999.ndpi"], "patient_id": [IDS[1]]}).to_csv(mapping, index=False)
    with pytest.raises(CohortError, match="names 'scan_9999.ndpi', which is not in"):
        reg.add(operator(), folder, "tcga", name="brx_bad", options={"slides": str(slides), "slide_map": str(mapping)})
    pd.DataFrame({"slide": ["scan_0000.ndpi"] * 2, "patient_id": [IDS[1], IDS[2]]}).to_csv(mapping, index=False)
    with pytest.raises(CohortError, match="lists 'scan_0000.ndpi' more than once"):
        link_slides(IDS, slides, mapping)
    pd.DataFrame({"file": ["scan_0000.ndpi"], "patient": [IDS[1]]}).to_csv(mapping, index=False)
    with pytest.raises(CohortError, match="lacks column"):
        link_slides(IDS, slides, mapping)
    with pytest.raises(CohortError, match="needs a slide folder"):
        reg.add(operator(), folder, "tcga", name="brx_nofolder", options={"slide_map": str(mapping)})
    with pytest.raises(CohortError, match="does not exist"):
        reg.add(operator(), folder, "tcga", name="brx_nodir", options={"slides": str(tmp_path / "nowhere")})
    assert [r.name for r in reg.records()] == ["brx_map"]


def test_slide_folder_typed_on_the_page_must_be_allowed(ws, tmp_path):
    folder = _tcga_folder(ws.home / "incoming")
    outside = tmp_path / "elsewhere"
    _touch(outside / f"{IDS[0]}-01Z-00-DX1.svs")
    reg = CohortRegistry(ws.db, ws.audit)
    with pytest.raises(CohortError, match="is not allowed or not found"):
        reg.add_from_ui(operator(), str(folder), "tcga", "brx_ui", ws.allowed_roots(), slides=str(outside))
    inside = ws.home / "incoming" / "slides"
    _touch(inside / f"{IDS[0]}-01Z-00-DX1.svs")
    c = reg.add_from_ui(operator(), str(folder), "tcga", "brx_ui", ws.allowed_roots(), slides=str(inside))
    assert c.clinical["slide"].notna().sum() == 1


def test_tcga_cdr_endpoints_in_months_and_bad_values_refused(tmp_path):
    folder = _tcga_folder(tmp_path)
    c = load_tcga("brx", root=tmp_path)
    assert [e.key for e in c.endpoints] == ["os", "pfi"]
    raw = pd.read_csv(folder / "clinical.csv").set_index("patient_id")
    assert c.clinical.at[IDS[10], "pfi_time"] == pytest.approx(raw.at[IDS[10], "PFI.time"] / 30.4375)
    assert c.clinical["pfi_event"].isna().sum() == 4 and "progression-free interval from PFI.time days" in c.description
    pfi = c.with_endpoint("pfi")
    assert pfi.n == 146 and "4 patients without it dropped" in pfi.description
    assert "pfi_time" in c.outcome_columns and "PFI" not in c.clinical.columns
    raw["PFI"] = raw["PFI"].astype(object)
    raw.loc[IDS[20], "PFI"] = "progressed"
    raw.reset_index().to_csv(folder / "clinical.csv", index=False)
    with pytest.raises(CohortError, match="column 'PFI' has non-numeric values: 'progressed'"):
        load_tcga("brx", root=tmp_path)


def test_coxpasnet_job_on_a_chosen_endpoint(ws, tmp_path):
    """The endpoint is a job parameter: checked at submission, trained on (patients without it
    left out), recorded in the manifest, and named so it never replaces the primary model."""
    from pathviz.jobs.coxpasnet import train_registered_coxpasnet
    from pathviz.jobs.queue import JobError, job_kinds

    folder = _tcga_folder(tmp_path)
    CohortRegistry(ws.db, ws.audit).add(operator(), folder, "tcga", name="brx_ep")
    gmt = ws.home / "genesets" / "toy.gmt"
    gmt.parent.mkdir(parents=True, exist_ok=True)
    gmt.write_text("".join(f"PW{k}\ttoy\t" + "\t".join(GENES[8 * k: 8 * k + 8]) + "\n" for k in range(5)))
    kind = job_kinds()["coxpasnet"]
    base = {"cohort": "brx_ep", "genesets": str(gmt), "min_size": 5}
    with pytest.raises(CohortError, match="has no endpoint 'dfs'; available: os, pfi"):
        kind.validate({**base, "endpoint": "dfs"})
    with pytest.raises(JobError, match="not one of"):
        kind.validate({**base, "missing_omics": "guess"})
    params = kind.validate({**base, "endpoint": "pfi"})
    assert params["missing_omics"] == "exclude"
    man, _, metrics = train_registered_coxpasnet(ws.models_dir, "brx_ep", str(gmt), min_size=5, endpoint="pfi")
    assert man.ref.startswith("coxpasnet/brx_ep.pfi@") and man.params["endpoint"] == "pfi"
    assert metrics["n_patients"] == 146 and "progression-free interval" in man.card["data"]
    cohort = load_cohort_endpoint("brx_ep", "pfi")
    assert man.data_digest and endpoint_model_name("brx_ep", "pfi") == "brx_ep.pfi"
    assert endpoint_model_name("brx_ep", "") == endpoint_model_name("brx_ep", "os") == "brx_ep"
    from pathviz.risk.registered import chosen_risk_versions, load_registered_risk
    from pathviz.store.registry import ModelRegistry

    reg = ModelRegistry(ws.models_dir)
    assert chosen_risk_versions(reg, "brx_ep") == {}  # the primary endpoint has no model yet
    model = load_registered_risk(reg, chosen_risk_versions(reg, "brx_ep.pfi")["coxpasnet"].ref, cohort)  # digest matches
    assert model is not None
