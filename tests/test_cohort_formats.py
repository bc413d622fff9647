"""Bring your own cohort: cBioPortal study folders, GDC downloads, expression-scale detection.

Fixtures are written into tmp_path in the real layouts (cBioPortal 4-line '#' headers and
"1:DECEASED" statuses, TCGA barcodes; a GDC sample sheet with STAR-counts files in File-ID
subfolders and a clinical.tsv with '--), small enough to check every number by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathviz.cohort import CohortError, OutcomeLeakageError
from pathviz.cohort.formats import load_cbioportal, load_gdc, patient_key, read_cbioportal_table
from pathviz.cohort.loaders import shared_data_dir
from pathviz.cohort.omics import OmicsScale, clip_declared, describe_omics, detect_scale


# -- cBioPortal fixture ---------------------------------------------------------------------------
def _cbio_file(path, display, descr, types, columns, rows):
    lines = ["#" + "\t".join(display), "#" + "\t".join(descr), "#" + "\t".join(types), "#" + "\t".join(["1"] * len(columns)),
             "\t".join(columns)] + ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


PATIENT_COLUMNS = ["PATIENT_ID", "OS_MONTHS", "OS_STATUS", "DSS_MONTHS", "DSS_STATUS", "DFS_MONTHS", "DFS_STATUS",
                   "PFS_MONTHS", "PFS_STATUS", "AGE", "SEX", "AJCC_PATHOLOGIC_TUMOR_STAGE", "PERSON_NEOPLASM_CANCER_STATUS",
                   "OTHER_PATIENT_ID"]
NA = "[Not Available]"
PATIENTS = [
    ["TCGA-BR-6452", 12.5, "1:DECEASED", 12.5, "1:DEAD WITH TUMOR", 8.1, "1:Recurred/Progressed", 8.1, "1:PROGRESSION",
     65, "Male", "STAGE II", "With Tumor", "uuid-6452"],
    ["TCGA-BR-6453", 30.2, "0:LIVING", 30.2, "0:ALIVE OR DEAD TUMOR FREE", 30.2, "0:DiseaseFree", 30.2, "0:CENSORED",
     58, "Female", "STAGE I", "Tumor Free", "uuid-6453"],
    ["TCGA-BR-6454", NA, NA, NA, NA, NA, NA, NA, NA, 70, "Male", "STAGE III", NA, "uuid-6454"],  # no OS: dropped
    ["TCGA-BR-6455", 5.0, "1:DECEASED", 5.0, "1:DEAD WITH TUMOR", NA, NA, 3.0, "1:PROGRESSION",
     77, "Female", NA, "With Tumor", "uuid-6455"],  # no DFS
    ["TCGA-BR-6456", 44.0, "0:LIVING", 44.0, "0:ALIVE OR DEAD TUMOR FREE", 40.0, "1:Recurred/Progressed", 40.0,
     "1:PROGRESSION", 49, "Male", "STAGE IV", "With Tumor", "uuid-6456"],
    ["TCGA-BR-6457", 20.1, "1:DECEASED", 20.1, "0:ALIVE OR DEAD TUMOR FREE", 15.0, "1:Recurred/Progressed", 15.0,
     "1:PROGRESSION", 61, "Female", "STAGE II", "With Tumor", "uuid-6457"],
]
#: (sample, patient): 6452 has a metastatic (06) sample beside its primary (01); 6453 a normal (11).
SAMPLES = [("TCGA-BR-6452-06", "TCGA-BR-6452"), ("TCGA-BR-6452-01", "TCGA-BR-6452"), ("TCGA-BR-6453-01", "TCGA-BR-6453"),
           ("TCGA-BR-6453-11", "TCGA-BR-6453"), ("TCGA-BR-6454-01", "TCGA-BR-6454"), ("TCGA-BR-6455-01", "TCGA-BR-6455"),
           ("TCGA-BR-6456-01", "TCGA-BR-6456"), ("TCGA-BR-6457-01", "TCGA-BR-6457")]
KEPT = ["TCGA-BR-6452-01", "TCGA-BR-6453-01", "TCGA-BR-6455-01", "TCGA-BR-6456-01", "TCGA-BR-6457-01"]
GENES = ["TP53", "CDH1", "ERBB2", "MET", "KRAS", "PIK3CA", "ARID1A", "RHOA", "MYC", "CCNE1"]


def _zscores(seed=0) -> pd.DataFrame:
    """Genes x samples: per-gene standardised over the samples that will be kept; TP53 appears
    twice (the second row has the smaller variance and must be dropped)."""
    rng = np.random.default_rng(seed)
    vals = rng.normal(size=(len(GENES), len(SAMPLES)))
    df = pd.DataFrame(vals, index=GENES, columns=[s for s, _ in SAMPLES])
    k = df[KEPT]
    df[KEPT] = k.sub(k.mean(axis=1), axis=0).div(k.std(axis=1), axis=0)
    dup = pd.DataFrame([df.loc["TP53"] * 0.1], index=["TP53"])
    return pd.concat([df, dup])


def write_cbio(folder, patients=PATIENTS, expression="zscores"):
    folder.mkdir(parents=True, exist_ok=True)
    _cbio_file(folder / "data_clinical_patient.txt",
               ["Patient Identifier", "Overall Survival (Months)", "Overall Survival Status", "Months of disease-specific survival",
                "Disease-specific Survival status", "Disease Free (Months)", "Disease Free Status", "Progress Free Survival (Months)",
                "Progression Free Status", "Diagnosis Age", "Sex", "Neoplasm Disease Stage American Joint Committee on Cancer Code",
                "Person Neoplasm Cancer Status", "Other Patient ID"],
               ["Identifier to uniquely specify a patient."] + ["Description."] * (len(PATIENT_COLUMNS) - 1),
               ["STRING", "NUMBER", "STRING", "NUMBER", "STRING", "NUMBER", "STRING", "NUMBER", "STRING", "NUMBER", "STRING",
                "STRING", "STRING", "STRING"],
               PATIENT_COLUMNS, patients)
    _cbio_file(folder / "data_clinical_sample.txt", ["Patient Identifier", "Sample Identifier", "Oncotree Code"],
               ["Identifier to uniquely specify a patient.", "A unique sample identifier.", "Oncotree code"],
               ["STRING", "STRING", "STRING"], ["PATIENT_ID", "SAMPLE_ID", "ONCOTREE_CODE"],
               [(p, s, "STAD") for s, p in SAMPLES])
    z = _zscores()
    entrez = {g: 1000 + i for i, g in enumerate(GENES)}
    if expression == "zscores":
        table = z.round(4)
        fname = "data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt"
    else:
        table = (2 ** (z * 2 + 8)).round(4)
        fname = "data_mrna_seq_v2_rsem.txt"
    table.insert(0, "Entrez_Gene_Id", [entrez[g] for g in table.index])
    table.index.name = "Hugo_Symbol"
    table.reset_index().to_csv(folder / fname, sep="\t", index=False)
    maf = ["#version 2.4", "Hugo_Symbol\tEntrez_Gene_Id\tCenter\tNCBI_Build\tChromosome\tStart_Position\tVariant_Classification\t"
           "Tumor_Sample_Barcode\tHGVSp_Short",
           "TP53\t7157\tbroad.mit.edu\tGRCh37\t17\t7578406\tMissense_Mutation\tTCGA-BR-6452-01\tp.R175H",
           "CDH1\t999\tbroad.mit.edu\tGRCh37\t16\t68842471\tNonsense_Mutation\tTCGA-BR-6452-01\tp.Q23*",
           "ARID1A\t8289\tbroad.mit.edu\tGRCh37\t1\t27023000\tFrame_Shift_Del\tTCGA-BR-6456-01\tp.G276fs"]
    (folder / "data_mutations.txt").write_text("\n".join(maf) + "\n")
    (folder / "data_cna.txt").write_text("Hugo_Symbol\tEntrez_Gene_Id\tTCGA-BR-6452-01\tTCGA-BR-6453-01\tTCGA-BR-6457-01\n"
                                         "ERBB2\t2064\t2\t0\t-1\nMYC\t4609\t1\t0\t0\n")
    return folder


def test_cbioportal_header_lines_are_read_as_metadata(tmp_path):
    folder = write_cbio(tmp_path / "stad_tcga")
    table, meta = read_cbioportal_table(folder / "data_clinical_patient.txt")
    assert list(table.columns) == PATIENT_COLUMNS and len(table) == 6  # the '#' lines are not rows
    assert meta["OS_MONTHS"]["datatype"] == "NUMBER" and meta["OS_MONTHS"]["display"] == "Overall Survival (Months)"
    assert table["OS_MONTHS"].dtype == float and np.isnan(table.at[2, "OS_MONTHS"])  # [Not Available] -> missing


def test_cbioportal_study_endpoints_events_and_drops(tmp_path):
    c = load_cbioportal(write_cbio(tmp_path / "stad_tcga"))
    assert c.name == "stad_tcga"
    assert list(c.clinical.index) == ["TCGA-BR-6452", "TCGA-BR-6453", "TCGA-BR-6455", "TCGA-BR-6456", "TCGA-BR-6457"]
    assert "1 patient without overall survival (OS_MONTHS/OS_STATUS missing) dropped" in c.description
    assert c.clinical["time"].tolist() == [12.5, 30.2, 5.0, 44.0, 20.1]  # months as shipped
    assert c.clinical["event"].tolist() == [1, 0, 1, 0, 1]  # 1:DECEASED -> 1, 0:LIVING -> 0
    assert [e.key for e in c.endpoints] == ["os", "dss", "dfs", "pfs"]
    assert c.clinical["dss_event"].tolist() == [1, 0, 1, 0, 0]
    assert c.clinical["pfs_event"].tolist() == [1, 0, 1, 1, 1]
    assert c.clinical["dfs_event"].tolist()[:2] == [1, 0] and np.isnan(c.clinical.at["TCGA-BR-6455", "dfs_months"])
    assert c.clinical.at["TCGA-BR-6456", "dfs_months"] == 40.0
    # covariates renamed / kept; outcomes and ids never covariates
    assert c.clinical.at["TCGA-BR-6452", "age"] == 65 and c.clinical.at["TCGA-BR-6453", "sex"] == "Female"
    assert c.clinical.at["TCGA-BR-6456", "stage"] == "STAGE IV" and pd.isna(c.clinical.at["TCGA-BR-6455", "stage"])
    assert "PERSON_NEOPLASM_CANCER_STATUS" in c.derived_outcomes
    assert set(c.clinical_covariates()) == {"age", "sex", "stage"}
    with pytest.raises(OutcomeLeakageError):
        c.check_features(["age", "PERSON_NEOPLASM_CANCER_STATUS"])
    assert "mutations (data_mutations.txt) for 2 of 5 patients" in c.description
    assert "copy-number (CNA) (data_cna.txt) for 3 of 5 patients" in c.description
    summary = c.summary()
    assert summary["omics_scale"] == "z-score" and summary["omics_note"] == c.omics_note


def test_cbioportal_expression_samples_to_patients_and_duplicate_genes(tmp_path):
    c = load_cbioportal(write_cbio(tmp_path / "stad_tcga"), name="my_stad")
    assert c.name == "my_stad"
    z = _zscores()
    # one row per patient with a usable clinical row; the primary (01) sample kept, normals never
    assert list(c.omics.index) == ["TCGA-BR-6452", "TCGA-BR-6453", "TCGA-BR-6455", "TCGA-BR-6456", "TCGA-BR-6457"]
    assert c.clinical.at["TCGA-BR-6452", "sample_id"] == "TCGA-BR-6452-01"
    assert c.omics.at["TCGA-BR-6452", "MET"] == pytest.approx(round(z.iloc[GENES.index("MET")]["TCGA-BR-6452-01"], 4), abs=1e-5)
    # duplicate Hugo symbol: the highest-variance TP53 row kept
    assert list(c.omics.columns) == GENES
    assert c.omics.at["TCGA-BR-6453", "TP53"] == pytest.approx(round(z.iloc[0]["TCGA-BR-6453-01"], 4), abs=1e-5)
    note = c.omics_note
    assert "data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt" in note
    assert "1 duplicate Hugo symbol row dropped (highest-variance row kept)" in note
    assert "1 normal-tissue sample not used" in note
    assert "1 patient with several expression samples" in note and "TCGA-BR-6452 -> TCGA-BR-6452-01" in note
    assert "1 patient with expression but no usable clinical row left out" in note  # TCGA-BR-6454 (no OS)
    assert c.omics_scale == "z-score" and "declared z-score: consistent" in note and note.endswith("not clipped")
    assert "sample_id" in c.id_columns and "OTHER_PATIENT_ID" in c.id_columns


def test_cbioportal_rsem_fallback_is_not_transformed(tmp_path):
    c = load_cbioportal(write_cbio(tmp_path / "s", expression="rsem"))
    assert "data_mrna_seq_v2_rsem.txt" in c.omics_note and "not clipped" in c.omics_note
    assert c.omics_scale == "unknown"  # linear RSEM values: not log2, not z, not integer counts
    assert c.omics.to_numpy().max() > 1000


def test_with_endpoint_dfs_swaps_primary_and_keeps_guard(tmp_path):
    c = load_cbioportal(write_cbio(tmp_path / "stad_tcga"))
    d = c.with_endpoint("dfs")
    assert d.endpoint == "disease-free survival"
    assert list(d.clinical.index) == ["TCGA-BR-6452", "TCGA-BR-6453", "TCGA-BR-6456", "TCGA-BR-6457"]  # 6455: no DFS
    assert d.clinical["time"].tolist() == [8.1, 30.2, 40.0, 15.0] and d.clinical["event"].tolist() == [1, 0, 1, 1]
    assert "1 patient without it dropped" in d.description
    assert [e.key for e in d.endpoints] == ["dfs", "os", "dss", "pfs"]
    assert d.clinical["os_time"].tolist() == [12.5, 30.2, 44.0, 20.1] and d.clinical["os_event"].tolist() == [1, 0, 0, 1]
    assert {"os_time", "os_event", "dss_months", "pfs_event"} <= d.outcome_columns
    assert set(d.clinical_covariates()) == {"age", "sex", "stage"}
    with pytest.raises(OutcomeLeakageError):
        d.check_features(["age", "os_time"])
    assert list(d.omics.index) == list(d.clinical.index)
    assert c.n == 5 and c.endpoints[0].key == "os"  # the original is untouched
    assert c.with_endpoint("os").clinical["time"].tolist() == c.clinical["time"].tolist()
    with pytest.raises(CohortError, match="no endpoint 'rfs'; available: os, dss, dfs, pfs"):
        c.with_endpoint("rfs")


def test_cbioportal_unknown_status_is_refused_by_name(tmp_path):
    rows = [list(r) for r in PATIENTS]
    rows[0][2] = rows[4][2] = "1:DEAD"
    with pytest.raises(CohortError) as err:
        load_cbioportal(write_cbio(tmp_path / "s", patients=rows))
    msg = str(err.value)
    assert "'OS_STATUS'" in msg and "'1:DEAD' (2 patients)" in msg and "TCGA-BR-6452" in msg and "never guessed" in msg
    c = load_cbioportal(tmp_path / "s", status_map={"1:dead": 1})  # the user declares the coding: accepted
    assert c.clinical.at["TCGA-BR-6452", "event"] == 1
    with pytest.raises(CohortError, match="codes must be 0 or 1"):
        load_cbioportal(tmp_path / "s", status_map={"1:DEAD": 2})


def test_cbioportal_missing_clinical_file(tmp_path):
    folder = write_cbio(tmp_path / "s")
    (folder / "data_clinical_patient.txt").unlink()
    with pytest.raises(CohortError, match=r"data_clinical_patient\.txt is missing in .*found: data_clinical_sample\.txt"):
        load_cbioportal(folder)
    with pytest.raises(CohortError, match="No cBioPortal study folder"):
        load_cbioportal(tmp_path / "nowhere")


# -- GDC fixture ----------------------------------------------------------------------------------
STAR_HEADER = ("gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\t"
               "fpkm_unstranded\tfpkm_uq_unstranded")
#: gene_id, gene_name, gene_type, TPM in sample A, TPM in sample B
STAR_GENES = [
    ("ENSG00000000003.15", "TSPAN6", "protein_coding", 36.1016, 12.0),
    ("ENSG00000000419.13", "DPM1", "protein_coding", 63.9853, 80.5),
    ("ENSG00000000457.14", "SCYL3", "protein_coding", 3.4, 5.2),
    ("ENSG00000001036.14", "FUCA2", "protein_coding", 20.3, 9.9),
    ("ENSG00000198899.2", "MT-ATP6", "protein_coding", 20000.0, 15000.0),  # log2 > 10: must stay unclipped
    ("ENSG00000002586.20", "CD99", "protein_coding", 150.0, 40.0),
    ("ENSG00000002586.20_PAR_Y", "CD99", "protein_coding", 0.0, 0.0),  # duplicate name, zero variance: dropped
    ("ENSG00000223972.5", "DDX11L1", "transcribed_unprocessed_pseudogene", 5.0, 7.0),  # not protein coding
]


def _star(path, which):
    lines = ["# gene-model: GENCODE v36", STAR_HEADER,
             "N_unmapped\t\t\t2281004\t2281004\t2281004\t\t\t", "N_multimapping\t\t\t4527198\t4527198\t4527198\t\t\t",
             "N_noFeature\t\t\t1544564\t29803430\t29904437\t\t\t", "N_ambiguous\t\t\t2516011\t590123\t589877\t\t\t"]
    for gid, name, gtype, a, b in STAR_GENES:
        tpm = a if which == 0 else b
        lines.append(f"{gid}\t{name}\t{gtype}\t{int(tpm * 30)}\t{int(tpm * 15)}\t{int(tpm * 15)}\t{tpm}\t{tpm / 3:.4f}\t{tpm / 2.8:.4f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


CLINICAL_TSV = [
    ["case_id", "case_submitter_id", "project_id", "age_at_index", "days_to_death", "days_to_last_follow_up", "gender",
     "vital_status", "ajcc_pathologic_stage", "treatment_type", "treatment_or_therapy"],
    ["c1-uuid", "TCGA-BR-6452", "TCGA-STAD", "65", "365.25", "'--", "male", "Dead", "Stage II", "Pharmaceutical Therapy, NOS", "yes"],
    ["c1-uuid", "TCGA-BR-6452", "TCGA-STAD", "65", "365.25", "'--", "male", "Dead", "Stage II", "Radiation Therapy, NOS", "no"],
    ["c2-uuid", "TCGA-BR-6453", "TCGA-STAD", "58", "'--", "913.125", "female", "Alive", "Stage I", "Pharmaceutical Therapy, NOS", "no"],
    ["c2-uuid", "TCGA-BR-6453", "TCGA-STAD", "58", "'--", "913.125", "female", "Alive", "Stage I", "Radiation Therapy, NOS", "no"],
    ["c3-uuid", "TCGA-BR-6454", "TCGA-STAD", "70", "'--", "'--", "male", "Alive", "Stage III", "'--", "'--"],  # no follow-up
    ["c4-uuid", "TCGA-BR-6455", "TCGA-STAD", "77", "'--", "400", "female", "Not Reported", "'--", "'--", "'--"],
    ["c5-uuid", "TCGA-BR-6456", "TCGA-STAD", "49", "'--", "'--", "male", "Dead", "Stage IV", "'--", "'--"],  # no death day
    ["c6-uuid", "TCGA-BR-6457", "TCGA-STAD", "61", "100", "'--", "female", "Dead", "'--", "'--", "'--"],  # no expression
]


def write_gdc(folder, clinical=CLINICAL_TSV, normal=False):
    folder.mkdir(parents=True, exist_ok=True)
    sheet = [["File ID", "File Name", "Data Category", "Data Type", "Project ID", "Case ID", "Sample ID", "Sample Type"]]
    files = [("f1a2b3c4-0000-4000-8000-000000000001", "TCGA-BR-6452", "TCGA-BR-6452-01A", "Primary Tumor", 0),
             ("f1a2b3c4-0000-4000-8000-000000000002", "TCGA-BR-6453", "TCGA-BR-6453-01A", "Primary Tumor", 1)]
    if normal:
        files.append(("f1a2b3c4-0000-4000-8000-000000000003", "TCGA-BR-6452", "TCGA-BR-6452-11A", "Solid Tissue Normal", 1))
    for fid, case, sample, stype, which in files:
        fname = f"{fid[::-1][:8]}-star.rna_seq.augmented_star_gene_counts.tsv"
        _star(folder / fid / fname, which)
        sheet.append([fid, fname, "Transcriptome Profiling", "Gene Expression Quantification", "TCGA-STAD", case, sample, stype])
    (folder / "gdc_sample_sheet.2024-05-01.tsv").write_text("\n".join("\t".join(r) for r in sheet) + "\n")
    if clinical is not None:
        (folder / "clinical.tsv").write_text("\n".join("\t".join(r) for r in clinical) + "\n")
    return folder


def test_gdc_download_survival_in_months_and_drops(tmp_path):
    c = load_gdc(write_gdc(tmp_path / "gdc_stad"))
    assert c.name == "gdc_stad"
    assert list(c.clinical.index) == ["TCGA-BR-6452", "TCGA-BR-6453", "TCGA-BR-6457"]
    assert c.clinical["time"].tolist() == pytest.approx([365.25 / 30.4375, 913.125 / 30.4375, 100 / 30.4375])
    assert c.clinical.at["TCGA-BR-6452", "time"] == pytest.approx(12.0) and c.clinical.at["TCGA-BR-6453", "time"] == pytest.approx(30.0)
    assert c.clinical["event"].tolist() == [1, 0, 1]
    assert "days / 30.4375" in c.time_unit_note and "months = days / 30.4375" in c.description
    assert "8 clinical.tsv rows collapsed to 6 cases" in c.description
    assert ("3 cases without usable overall survival dropped (1 no vital_status, 1 Dead without days_to_death, "
            "1 Alive without days_to_last_follow_up)") in c.description
    assert "expression (log2 TPM + 1) for 2 of 3 patients" in c.description
    assert c.clinical.at["TCGA-BR-6452", "age"] == 65 and c.clinical.at["TCGA-BR-6453", "sex"] == "female"
    assert c.clinical.at["TCGA-BR-6452", "stage"] == "Stage II" and pd.isna(c.clinical.at["TCGA-BR-6457", "stage"])
    assert "treatment_type" not in c.clinical.columns
    assert set(c.clinical_covariates()) == {"age", "sex", "stage"}  # case_id / sample_id are ids
    assert all(len(p) == 12 for p in c.clinical.index)


def test_gdc_star_matrix_log2_tpm_unclipped(tmp_path):
    c = load_gdc(write_gdc(tmp_path / "gdc_stad"))
    assert list(c.omics.index) == ["TCGA-BR-6452", "TCGA-BR-6453"]
    assert list(c.omics.columns) == ["TSPAN6", "DPM1", "SCYL3", "FUCA2", "MT-ATP6", "CD99"]  # no N_*, no pseudogene
    assert c.omics.at["TCGA-BR-6452", "TSPAN6"] == pytest.approx(np.log2(36.1016 + 1), rel=1e-6)
    assert c.omics.at["TCGA-BR-6452", "CD99"] == pytest.approx(np.log2(151), rel=1e-6)  # not the PAR_Y zero row
    assert c.omics.at["TCGA-BR-6452", "MT-ATP6"] == pytest.approx(np.log2(20001), rel=1e-6) and c.omics.to_numpy().max() > 14
    assert c.omics_scale == "log2 expression"
    assert "GENCODE v36" in c.omics_note and "1 duplicate gene_name row dropped" in c.omics_note
    assert "detected log2 expression" in c.omics_note and c.omics_note.endswith("not clipped")
    assert c.clinical.at["TCGA-BR-6453", "sample_id"] == "TCGA-BR-6453-01A"


def _clinical_json(rows=CLINICAL_TSV) -> list[dict]:
    """The GDC JSON export of the same cases: one object per case with a demographic object and a
    diagnoses list (treatments nested inside a diagnosis, as the portal writes them)."""
    head, cases = rows[0], {}
    for r in rows[1:]:
        v = {k: (None if x == "'--" else x) for k, x in zip(head, r)}
        case = cases.setdefault(v["case_submitter_id"], {
            "case_id": v["case_id"], "submitter_id": v["case_submitter_id"], "project": {"project_id": v["project_id"]},
            "demographic": {"vital_status": v["vital_status"], "gender": v["gender"], "age_at_index": v["age_at_index"]
                            and int(v["age_at_index"]), "days_to_death": v["days_to_death"] and float(v["days_to_death"])},
            "diagnoses": [{"days_to_last_follow_up": v["days_to_last_follow_up"] and float(v["days_to_last_follow_up"]),
                           "ajcc_pathologic_stage": v["ajcc_pathologic_stage"], "treatments": []}]})
        case["diagnoses"][0]["treatments"].append({"treatment_type": v["treatment_type"]})
    return list(cases.values())


def test_gdc_clinical_json_gives_the_tsv_cohort(tmp_path):
    import json

    tsv = load_gdc(write_gdc(tmp_path / "t"))
    folder = write_gdc(tmp_path / "j", clinical=None)
    (folder / "clinical.cases_selection.2024-05-01.json").write_text(json.dumps(_clinical_json()))
    js = load_gdc(folder, name="t")
    cols = ["time", "event", "age", "sex", "stage"]
    pd.testing.assert_frame_equal(js.clinical[cols], tsv.clinical[cols])
    assert "collapsed" not in js.description and "collapsed" in tsv.description  # JSON: one row per case
    (folder / "clinical.cases_selection.2024-05-01.json").write_text('{"not": "a list"}')
    with pytest.raises(CohortError, match="expected a list of case objects"):
        load_gdc(folder)


def test_gdc_normal_sample_never_used(tmp_path):
    c = load_gdc(write_gdc(tmp_path / "g", normal=True))
    assert c.clinical.at["TCGA-BR-6452", "sample_id"] == "TCGA-BR-6452-01A"
    assert c.omics.at["TCGA-BR-6452", "TSPAN6"] == pytest.approx(np.log2(37.1016), rel=1e-6)
    assert "1 normal-tissue sample not used" in c.omics_note


def test_gdc_missing_clinical_and_unknown_vital_status(tmp_path):
    with pytest.raises(CohortError, match=r"clinical\.tsv \(or clinical\*\.json\) is missing in .*gdc_sample_sheet"):
        load_gdc(write_gdc(tmp_path / "a", clinical=None))
    rows = [list(r) for r in CLINICAL_TSV]
    rows[1][7] = rows[2][7] = "Deceased"
    with pytest.raises(CohortError, match=r"'vital_status' has values PathViz does not know: 'Deceased' \(2 patients\)"):
        load_gdc(write_gdc(tmp_path / "b", clinical=rows))
    c = load_gdc(tmp_path / "b", status_map={"DECEASED": 1})
    assert c.clinical.at["TCGA-BR-6452", "event"] == 1


def test_patient_key_cuts_tcga_barcodes_only():
    assert patient_key("TCGA-BR-6452-01A-11R-1802-13") == "TCGA-BR-6452"
    assert patient_key(" P-0001 ") == "P-0001"


# -- scale detection --------------------------------------------------------------------------------
def _matrix(values):
    return pd.DataFrame(values, index=[f"P{i}" for i in range(values.shape[0])],
                        columns=[f"G{j}" for j in range(values.shape[1])])


def test_detect_scale_z_scores_even_heavy_tailed():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 200))
    x = (x - x.mean(0)) / x.std(0, ddof=1)
    m = _matrix(x)
    m.iloc[3, 5] = 1354.3  # cBioPortal reference z-scores are heavy-tailed: still z-scores
    s = detect_scale(m)
    assert isinstance(s, OmicsScale) and s.kind == "z-score"
    assert "median gene mean" in s.evidence and "median gene sd" in s.evidence and "max 1354.30" in s.evidence


def test_detect_scale_log2_tpm_counts_and_unknown():
    rng = np.random.default_rng(2)
    tpm = rng.lognormal(mean=2.5, sigma=2.0, size=(60, 300))
    tpm[:, 0] = 30000.0 + rng.uniform(0, 1000, 60)  # a very high gene: log2 values above 10
    log2 = _matrix(np.log2(tpm + 1))
    before = log2.copy()
    s = detect_scale(log2)
    assert s.kind == "log2 expression" and log2.to_numpy().max() > 14
    pd.testing.assert_frame_equal(log2, before)  # detection never changes (or clips) the matrix
    xena = _matrix(np.log2(np.where(rng.uniform(size=tpm.shape) < 0.1, 0, tpm) + 0.001))  # floor -9.97
    assert detect_scale(xena).kind == "log2 expression"
    counts = _matrix(rng.negative_binomial(2, 0.001, size=(40, 100)).astype(float))
    c = detect_scale(counts)
    assert c.kind == "counts" and "non-negative integers" in c.evidence
    lin = detect_scale(_matrix(tpm))
    assert lin.kind == "unknown" and "not log-transformed" in lin.evidence
    assert detect_scale(pd.DataFrame()).kind == "unknown"


def test_describe_and_clip_declared():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 40))
    x = (x - x.mean(0)) / x.std(0, ddof=1)
    m = _matrix(x)
    m.iloc[0, 0], m.iloc[1, 1] = 25.0, -12.0
    s = detect_scale(m)
    assert describe_omics(m, s, "z-score").endswith("declared z-score: consistent")
    assert "but the values look like z-score" in describe_omics(m, s, "log2 expression")
    assert describe_omics(m, s, None).startswith("50 patients x 40 genes; detected z-score (")
    clipped, n = clip_declared(m, 10)
    assert n == 2 and clipped.to_numpy().max() == 10 and clipped.to_numpy().min() == -10
    assert m.iloc[0, 0] == 25.0  # the input is not modified
    with pytest.raises(ValueError):
        clip_declared(m, 0)


# -- the shared real TCGA matrices ----------------------------------------------------------------
def test_detect_scale_on_shared_tcga_stad():
    folder = shared_data_dir() / "tcga" / "stad"
    if not (folder / "rna.csv.gz").exists() or not (folder / "rna_xena_log2tpm.csv.gz").exists():
        pytest.skip("../shared/data/tcga/stad not present")
    z = detect_scale(pd.read_csv(folder / "rna.csv.gz", index_col=0))
    assert z.kind == "z-score", z.evidence
    xena = detect_scale(pd.read_csv(folder / "rna_xena_log2tpm.csv.gz", index_col=0))
    assert xena.kind == "log2 expression", xena.evidence
