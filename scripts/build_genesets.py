"""Rebuild assets/genesets/ (the default gene-set library) from Debian's Bioconductor packages.

Sources (SQLite databases inside the .deb files, no R needed):
* r-bioc-org.hs.eg.db: Entrez gene -> symbol, GO biological-process annotations (``go_bp_all``:
  direct annotations propagated to ancestor terms, as MSigDB's GO sets), KEGG pathway ids;
* r-bioc-go.db: GO term names.

Usage (Debian, as root or with apt-get download rights)::

    python scripts/build_genesets.py [--min 15] [--max 300]

Writes assets/genesets/go_bp.gmt, kegg.gmt, aliases.tsv.gz (unambiguous alias -> symbol) and
PROVENANCE.md.
KEGG pathway names are not in these packages: KEGG sets are named by id (KEGG_hsa04110).
"""

from __future__ import annotations

import argparse
import gzip
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "assets" / "genesets"
PACKAGES = ("r-bioc-org.hs.eg.db", "r-bioc-go.db")


def fetch(tmp: Path) -> tuple[Path, Path, dict]:
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True, capture_output=True)
    versions = {}
    for deb in tmp.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(tmp / "x")], check=True)
        versions[deb.name.split("_")[0]] = deb.name.split("_")[1]
    org = next((tmp / "x").rglob("org.Hs.eg.sqlite"))
    go = next((tmp / "x").rglob("GO.sqlite"))
    return org, go, versions


def write_gmt(path: Path, sets: dict[str, tuple[str, list[str]]]) -> None:
    with open(path, "w") as f:
        for name in sorted(sets):
            desc, genes = sets[name]
            f.write("\t".join([name, desc, *genes]) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--min", type=int, default=15)
    ap.add_argument("--max", type=int, default=300)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        org_path, go_path, versions = fetch(Path(t))
        org = sqlite3.connect(org_path)
        go = sqlite3.connect(go_path)
        symbol = dict(org.execute("select _id, symbol from gene_info"))
        names = dict(go.execute("select go_id, term from go_term where ontology = 'BP'"))
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
    keep = lambda g: args.min <= len(g) <= args.max  # noqa: E731
    go_out = {f"GOBP_{gid.replace(':', '_')}": (names.get(gid, gid), sorted(g)) for gid, g in go_sets.items() if keep(g)}
    kegg_out = {f"KEGG_hsa{pid}": (f"KEGG pathway hsa{pid}", sorted(g)) for pid, g in kegg_sets.items() if keep(g)}
    write_gmt(OUT / "go_bp.gmt", go_out)
    write_gmt(OUT / "kegg.gmt", kegg_out)
    # alias -> official symbol; an alias shared by several genes is ambiguous and left out
    counts: dict[str, set] = defaultdict(set)
    for a, sym in aliases:
        counts[a.upper()].add(sym)
    with gzip.open(OUT / "aliases.tsv.gz", "wt") as f:
        f.write("alias\tsymbol\n")
        for a in sorted(counts):
            if len(counts[a]) == 1 and a != next(iter(counts[a])).upper():
                f.write(f"{a}\t{next(iter(counts[a]))}\n")
    (OUT / "PROVENANCE.md").write_text(
        "# Default gene-set library\n\n"
        f"Built by `scripts/build_genesets.py` from Debian packages {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}.\n\n"
        f"| file | sets | source | size filter |\n| --- | --- | --- | --- |\n"
        f"| go_bp.gmt | {len(go_out)} | GO biological process, org.Hs.eg.db `go_bp_all` (annotations propagated to ancestors); "
        f"GO {gmeta.get('GOSOURCEDATE')}, Entrez Gene {meta.get('EGSOURCEDATE')}; term names from GO.db | {args.min}-{args.max} genes |\n"
        f"| kegg.gmt | {len(kegg_out)} | KEGG pathways, org.Hs.eg.db `kegg` (KEGG GENOME {meta.get('KEGGSOURCEDATE')}); "
        f"names are not in the package, so sets are named by KEGG id | {args.min}-{args.max} genes |\n\n"
        "Genes are HGNC symbols (org.Hs.eg.db `gene_info.symbol`). Description column: the GO term name or the KEGG id.\n"
        "`aliases.tsv.gz`: org.Hs.eg.db `alias` table, upper-cased aliases that map to exactly one symbol.\n"
    )
    print(f"go_bp.gmt: {len(go_out)} sets; kegg.gmt: {len(kegg_out)} sets -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
