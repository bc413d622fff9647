"""Genomics: gene sets (GMT), pathway masks, expression preprocessing fitted on training data."""

from pathviz.genomics.genesets import (
    MAX_SIZE,
    MIN_SIZE,
    GeneSet,
    GeneSetError,
    GeneSetLibrary,
    PathwayMapping,
    coverage_table,
    default_library,
    pathway_mask,
    read_gmt,
    read_gmt_text,
    readable_descriptions,
    write_gmt,
)
from pathviz.genomics.preprocess import ExpressionScaler

__all__ = ["MAX_SIZE", "MIN_SIZE", "ExpressionScaler", "GeneSet", "GeneSetError", "GeneSetLibrary", "PathwayMapping",
           "coverage_table", "default_library", "pathway_mask", "read_gmt", "read_gmt_text", "readable_descriptions",
           "write_gmt"]
