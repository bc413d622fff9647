"""KEGG pathway names in the shipped kegg.gmt (issue 9) and GMT content parsed from memory (uploads)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from pathviz.genomics import GeneSet, GeneSetError, GeneSetLibrary, default_library, read_gmt, read_gmt_text, write_gmt
from pathviz.genomics.genesets import ASSETS

ROOT = Path(__file__).resolve().parents[1]
#: SHA-256 of kegg.gmt without its description column (set names and genes as built from
#: org.Hs.eg.db 3.16.0 before names were added): adding names must not touch them.
SETS_AND_GENES_SHA256 = "cc9a11785d56fb345d6442a2233499cd5f5ee9a4ce09817142992da7f5ba1299"


def _names() -> dict[str, str]:
    """kegg_names.tsv, the names derived from the pinned source file (see PROVENANCE.md)."""
    lines = (ASSETS / "kegg_names.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kegg_id\tname"
    return dict(line.split("\t") for line in lines[1:])


def _script():
    spec = importlib.util.spec_from_file_location("build_genesets", ROOT / "scripts" / "build_genesets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _without_descriptions(text: str) -> list[list[str]]:
    return [[f[0], *f[2:]] for f in (line.split("\t") for line in text.splitlines())]


# -- shipped names -------------------------------------------------------------------------------
def test_named_kegg_sets_carry_their_source_name():
    kegg, names = default_library("kegg"), _names()
    provenance = (ASSETS / "PROVENANCE.md").read_text()
    named = 0
    for s in kegg.sets:
        hid = s.name.removeprefix("KEGG_")
        assert re.fullmatch(r"hsa\d{5}", hid)
        if hid in names:
            named += 1
            assert s.description == f"{names[hid]} ({hid})"
            assert s.description != f"KEGG pathway {hid}" and names[hid].strip()
        else:  # unnamed ids keep the id description and are listed in PROVENANCE.md
            assert s.description == f"KEGG pathway {hid}" and hid in provenance
    assert f"Named: {named} of the {len(kegg)} kegg.gmt sets." in provenance
    assert named == len(kegg) == 203  # every shipped KEGG set got a name from the pinned source


def test_cell_cycle_has_the_name_in_the_source_file():
    expected = _names()["hsa04110"]  # read from the shipped, derived file, not typed here
    assert default_library("kegg").get("KEGG_hsa04110").description == f"{expected} (hsa04110)"


def test_kegg_set_names_and_genes_unchanged():
    text = (ASSETS / "kegg.gmt").read_text(encoding="utf-8")
    projected = "".join("\t".join(row) + "\n" for row in _without_descriptions(text))
    assert hashlib.sha256(projected.encode()).hexdigest() == SETS_AND_GENES_SHA256
    try:
        head = subprocess.run(["git", "show", "HEAD:assets/genesets/kegg.gmt"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git checkout to compare with")
    assert _without_descriptions(head) == _without_descriptions(text)


def test_provenance_records_the_pinned_source():
    mod = _script()
    provenance = (ASSETS / "PROVENANCE.md").read_text()
    for key in ("package", "version", "file", "sha256", "member", "member_sha256"):
        assert mod.KEGG_NAMES[key] in provenance
    assert mod.kegg_description("hsa04110", {"hsa04110": "X"}) == "X (hsa04110)"
    assert mod.kegg_description("hsa09999", {}) == "KEGG pathway hsa09999"


@pytest.mark.skipif(not os.environ.get("PATHVIZ_KEGG_NAMES_WHEEL"), reason="set PATHVIZ_KEGG_NAMES_WHEEL to the pygsva wheel")
def test_names_file_matches_the_wheel():
    mod = _script()
    wheel = Path(os.environ["PATHVIZ_KEGG_NAMES_WHEEL"])
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == mod.KEGG_NAMES["sha256"]
    with zipfile.ZipFile(wheel) as z:
        names, _ = mod.parse_kegg_names(z.read(mod.KEGG_NAMES["member"]).decode("utf-8"))
    assert names == _names()


# -- read_gmt_text -------------------------------------------------------------------------------
def _lib() -> GeneSetLibrary:
    return GeneSetLibrary([GeneSet("A", "first set", ["TP53", "EGFR", "KRAS"]),
                           GeneSet("B set", "Cell cycle (hsa04110)", ["CDK1", "CCNB1"])])


def test_read_gmt_text_round_trips_write_gmt(tmp_path):
    lib = _lib()
    path = write_gmt(lib, tmp_path / "x.gmt")
    want = [(s.name, s.description, s.genes) for s in lib.sets]
    for data in (path.read_bytes(), path.read_text(encoding="utf-8"), b"\xef\xbb\xbf" + path.read_bytes()):
        back = read_gmt_text(data, "x.gmt")
        assert [(s.name, s.description, s.genes) for s in back.sets] == want and back.source == "x.gmt"
    kegg_path = ASSETS / "kegg.gmt"
    from_memory = read_gmt_text(kegg_path.read_bytes(), "kegg.gmt")
    assert [(s.name, s.description, s.genes) for s in from_memory.sets] == \
           [(s.name, s.description, s.genes) for s in read_gmt(kegg_path).sets]


@pytest.mark.parametrize("blob", [bytes(range(256)), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "A\td\tG1\x00\n"])
def test_read_gmt_text_refuses_binary(blob):
    with pytest.raises(GeneSetError, match="upload.gmt is not a readable GMT text file") as err:
        read_gmt_text(blob, "upload.gmt")
    assert err.value.fix and err.value.path is None


@pytest.mark.parametrize("text, words", [
    ("A\td\tG1\tG2\nthis line has no tabs\n", "upload.gmt, line 2: expected name<TAB>description"),
    ("# comment\nA\td\tG1\n\nA\td\tG3\n", "upload.gmt, line 4: duplicate gene-set name 'A' (first on line 2)"),
    ("A\td\tG1\nB\td\t \n", "upload.gmt, line 2: gene set 'B' is empty"),
    ("\n# only a comment\n", "upload.gmt holds no gene sets"),
])
def test_read_gmt_text_names_the_bad_line(text, words):
    with pytest.raises(GeneSetError) as err:
        read_gmt_text(text, "upload.gmt")
    assert words in str(err.value) and err.value.fix


def test_read_gmt_still_names_the_file(tmp_path):
    p = tmp_path / "bad.gmt"
    p.write_text("A\td\tG1\nno tabs here\n")
    with pytest.raises(GeneSetError, match=r"bad.gmt, line 2: expected") as err:
        read_gmt(p)
    assert err.value.path == str(p)
