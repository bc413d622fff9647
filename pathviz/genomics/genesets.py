"""Gene sets: the GMT format (MSigDB's), size filters, mapping to a cohort's genes, the binary
gene x pathway mask that Cox-PASNet's pathway layer follows.

GMT: one set per line, ``name<TAB>description<TAB>gene1<TAB>gene2...`` (Subramanian et al., PNAS
2005; the MSigDB format). Symbols are matched case-insensitively, and through an alias table
(HGNC aliases from org.Hs.eg.db, ``assets/genesets/aliases.tsv.gz``) when a set's symbol is not
measured but its official symbol is (or the reverse).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pathviz.errors import PathVizError

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "genesets"
#: Gene-set size range kept by default (the seed's 15-300 genes).
MIN_SIZE, MAX_SIZE = 15, 300


class GeneSetError(PathVizError):
    """A GMT file or gene-set library is malformed or does not fit the data."""


@dataclass
class GeneSet:
    """One gene set: its unique name, a human-readable description and its member symbols."""

    name: str
    description: str
    genes: list[str]


@dataclass
class GeneSetLibrary:
    """An ordered collection of gene sets (unique names, non-empty sets)."""

    sets: list[GeneSet]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sets)

    def names(self) -> list[str]:
        """Set names, in library order."""
        return [s.name for s in self.sets]

    def get(self, name: str) -> GeneSet:
        """The set called ``name`` (:class:`GeneSetError` if there is none)."""
        for s in self.sets:
            if s.name == name:
                return s
        raise GeneSetError(f"No gene set named {name!r} in {self.source or 'the library'}.", "check the name.")

    def filter_size(self, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> "GeneSetLibrary":
        """Keep sets with ``min_size <= len(genes) <= max_size`` (before mapping to data)."""
        kept = [s for s in self.sets if min_size <= len(s.genes) <= max_size]
        return GeneSetLibrary(kept, self.source, self.notes + [f"size filter {min_size}-{max_size}: kept {len(kept)} of {len(self.sets)}"])

    def prune_redundant(self, max_jaccard: float = 0.8) -> "GeneSetLibrary":
        """Drop a set when a larger (earlier-kept) set overlaps it with Jaccard index > ``max_jaccard``."""
        kept: list[GeneSet] = []
        kept_sets: list[set] = []
        for s in sorted(self.sets, key=lambda s: -len(s.genes)):
            g = set(s.genes)
            if all(len(g & k) / len(g | k) <= max_jaccard for k in kept_sets):
                kept.append(s)
                kept_sets.append(g)
        order = {s.name: i for i, s in enumerate(self.sets)}
        kept.sort(key=lambda s: order[s.name])
        return GeneSetLibrary(kept, self.source, self.notes + [f"redundancy pruning (Jaccard > {max_jaccard}): kept {len(kept)} of {len(self.sets)}"])


def read_gmt(path: str | Path) -> GeneSetLibrary:
    """Read a GMT file.

    Raises:
        GeneSetError: unreadable or binary file, a line without a tab-separated description field,
            duplicate set names, or an empty set (messages give the line number).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GeneSetError(f"{path} is not a readable GMT text file ({exc}).", "give a UTF-8 GMT file.", path) from exc
    return _parse_gmt(_decode_gmt(data, str(path), path), str(path), path)


def read_gmt_text(data: str | bytes, source: str = "uploaded GMT") -> GeneSetLibrary:
    """Parse GMT content held in memory (an uploaded file, a pasted text), with :func:`read_gmt`'s rules.

    Nothing is written to disk. ``bytes`` are decoded as UTF-8 (a leading byte-order mark is
    dropped); a NUL byte or undecodable bytes mean a binary file and are refused.

    Args:
        data: the GMT content, ``name<TAB>description<TAB>gene1<TAB>gene2...`` per line.
        source: how messages name the content (e.g. the uploaded file's name); also the
            library's ``source``.

    Raises:
        GeneSetError: binary content, a line without a tab-separated description field,
            duplicate set names, an empty set (messages give ``source`` and the line number), or
            no set at all.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = _decode_gmt(bytes(data), source, None)
    elif isinstance(data, str):
        if "\x00" in data:
            raise GeneSetError(f"{source} is not a readable GMT text file (it holds binary data: NUL characters).",
                               _TEXT_FIX)
        text = data[1:] if data.startswith("\ufeff") else data
    else:
        raise GeneSetError(f"{source}: expected GMT text or bytes, got {type(data).__name__}.", _TEXT_FIX)
    return _parse_gmt(text, source, None)


_TEXT_FIX = "give a UTF-8 text GMT file: one set per line, name<TAB>description<TAB>genes..."


def _decode_gmt(data: bytes, source: str, path: Path | None) -> str:
    """UTF-8 text of a GMT file's bytes (BOM dropped); binary content raises :class:`GeneSetError`."""
    if b"\x00" in data:
        raise GeneSetError(f"{source} is not a readable GMT text file (it holds binary data: NUL bytes).", _TEXT_FIX, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GeneSetError(f"{source} is not a readable GMT text file (not UTF-8 text: {exc}).", _TEXT_FIX, path) from exc


def _parse_gmt(text: str, source: str, path: Path | None) -> GeneSetLibrary:
    """The GMT parser shared by :func:`read_gmt` and :func:`read_gmt_text`."""
    sets, seen = [], {}
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\n\r").split("\t")
        if len(fields) < 2:
            raise GeneSetError(f"{source}, line {no}: expected name<TAB>description<TAB>genes..., got {line[:60]!r}.",
                               "GMT fields are tab-separated.", path)
        name = fields[0].strip()
        genes = list(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
        if not name:
            raise GeneSetError(f"{source}, line {no}: a gene set has no name.", "put the set name in the first field.", path)
        if name in seen:
            raise GeneSetError(f"{source}, line {no}: duplicate gene-set name {name!r} (first on line {seen[name]}).",
                               "rename or merge the duplicates.", path)
        if not genes:
            raise GeneSetError(f"{source}, line {no}: gene set {name!r} is empty.", "remove it or add its genes.", path)
        seen[name] = no
        sets.append(GeneSet(name, fields[1].strip(), genes))
    if not sets:
        raise GeneSetError(f"{source} holds no gene sets.", "check the file.", path)
    return GeneSetLibrary(sets, source)


def write_gmt(library: GeneSetLibrary, path: str | Path) -> Path:
    """Write a library as GMT (round-trips with :func:`read_gmt`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for s in library.sets:
            f.write("\t".join([s.name, s.description, *s.genes]) + "\n")
    return path


def default_library(name: str = "kegg") -> GeneSetLibrary:
    """The shipped library: ``kegg`` or ``go_bp`` (see assets/genesets/PROVENANCE.md)."""
    path = ASSETS / f"{name}.gmt"
    if not path.exists():
        raise GeneSetError(f"No default gene-set library {name!r} at {path}.", "use kegg or go_bp, or give a GMT file.")
    return read_gmt(path)


@lru_cache(maxsize=1)
def _kegg_descriptions() -> dict[str, str]:
    return {gs.name: gs.description for gs in default_library("kegg").sets}


def readable_descriptions(names, descriptions) -> list[str]:
    """Descriptions with the shipped KEGG names filled in where a model stored the bare id
    (``"KEGG pathway hsa04110"``, written before names were shipped): ``"Cell cycle (hsa04110)"``.
    Other descriptions are returned unchanged."""
    kegg = _kegg_descriptions()
    return [kegg.get(str(n), d) if str(d).startswith("KEGG pathway ") else d for n, d in zip(names, descriptions)]


@lru_cache(maxsize=1)
def alias_table() -> dict[str, str]:
    """Upper-case alias -> official symbol (unambiguous aliases only)."""
    path = ASSETS / "aliases.tsv.gz"
    if not path.exists():
        return {}
    with gzip.open(path, "rt") as f:
        next(f)
        return dict(line.rstrip("\n").split("\t") for line in f)


@dataclass
class PathwayMapping:
    """Gene sets mapped onto a cohort's measured genes.

    Attributes:
        genes: measured genes used as inputs (in at least one kept pathway), in cohort spelling.
        pathways: kept set names.
        mask: ``bool[n_genes, n_pathways]`` (the pathway_mask).
        coverage: per kept pathway, ``(measured, size)``.
        dropped_low_coverage: set names dropped for coverage below ``min_coverage``.
        dropped_small: set names with fewer than ``min_genes`` measured genes.
        genes_outside_pathways: measured genes in no kept pathway (dropped from the inputs).
        renamed: set symbol -> cohort symbol matched by case or alias.
    """

    genes: list[str]
    pathways: list[str]
    mask: np.ndarray
    coverage: dict[str, tuple[int, int]]
    dropped_low_coverage: list[str]
    dropped_small: list[str]
    genes_outside_pathways: list[str]
    renamed: dict[str, str]

    def report(self) -> str:
        """One sentence: pathways and genes kept, sets dropped (coverage, size), genes outside
        every pathway, symbols matched by case or alias."""
        return (f"{len(self.pathways)} pathways over {len(self.genes)} genes; dropped {len(self.dropped_low_coverage)} sets "
                f"with low coverage and {len(self.dropped_small)} with too few measured genes; "
                f"{len(self.genes_outside_pathways)} measured genes are in no pathway and are not model inputs; "
                f"{len(self.renamed)} symbols matched by case or alias")


def pathway_mask(library: GeneSetLibrary, measured: list[str], min_coverage: float = 0.5, min_genes: int = 5,
                 use_aliases: bool = True) -> PathwayMapping:
    """Map gene sets onto measured genes and build the binary gene x pathway mask.

    Args:
        library: gene sets (already size-filtered if wanted).
        measured: the cohort's gene symbols.
        min_coverage: drop a set when less than this fraction of its genes is measured (reported).
        min_genes: drop a set with fewer measured genes than this.
        use_aliases: match symbols through the HGNC alias table as well as case-insensitively.

    Raises:
        GeneSetError: no set survives (the message gives the best coverage seen and the fix).
    """
    exact = {g: g for g in measured}
    upper: dict[str, str] = {}
    for g in measured:
        upper.setdefault(g.upper(), g)
    aliases = alias_table() if use_aliases else {}
    official_to_measured = {}
    if aliases:
        for g in measured:
            off = aliases.get(g.upper())
            if off and off.upper() not in upper:
                official_to_measured.setdefault(off.upper(), g)
    renamed: dict[str, str] = {}

    def resolve(sym: str) -> str | None:
        if sym in exact:
            return sym
        u = sym.upper()
        hit = upper.get(u) or official_to_measured.get(u)
        if hit is None and aliases:
            off = aliases.get(u)
            hit = upper.get(off.upper()) if off else None
        if hit is not None:
            renamed[sym] = hit
        return hit

    kept, cov, low, small, members = [], {}, [], [], []
    best = 0.0
    for s in library.sets:
        m = sorted({h for h in (resolve(g) for g in s.genes) if h is not None})
        frac = len(m) / len(s.genes)
        best = max(best, frac)
        if frac < min_coverage:
            low.append(s.name)
        elif len(m) < min_genes:
            small.append(s.name)
        else:
            kept.append(s.name)
            cov[s.name] = (len(m), len(s.genes))
            members.append(m)
    if not kept:
        raise GeneSetError(
            f"No gene set keeps at least {min_coverage:.0%} of its genes in this cohort's {len(measured)} genes "
            f"(best coverage {best:.0%}).",
            "use gene sets matching the platform, check that genes are HGNC symbols, or lower min_coverage.",
        )
    genes = sorted({g for m in members for g in m})
    index = {g: i for i, g in enumerate(genes)}
    mask = np.zeros((len(genes), len(kept)), dtype=bool)
    for j, m in enumerate(members):
        mask[[index[g] for g in m], j] = True
    outside = sorted(set(measured) - set(genes))
    return PathwayMapping(genes, kept, mask, cov, low, small, outside, renamed)


def coverage_table(mapping: PathwayMapping, library: GeneSetLibrary) -> pd.DataFrame:
    """Per kept pathway: name, description, size, measured genes, coverage fraction, members."""
    desc = {s.name: s.description for s in library.sets}
    rows = []
    for j, name in enumerate(mapping.pathways):
        measured, size = mapping.coverage[name]
        members = [g for g, on in zip(mapping.genes, mapping.mask[:, j]) if on]
        rows.append({"pathway": name, "description": desc.get(name, ""), "size": size, "measured": measured,
                     "coverage": measured / size, "genes": " ".join(members)})
    return pd.DataFrame(rows)
