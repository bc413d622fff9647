"""Expression preprocessing fitted on training data only (Cox-PASNet / PAGE-Net practice: "features
in the training set were normalized to a mean of zero and standard deviation of one; validation and
test sets were normalized by the mean and standard deviation from the training set").

Steps: optional log2(x + 1) when the training values look like raw counts/intensities (non-negative
with a maximum above 50); genes constant on the training data are dropped (reported); z-scores with
training mean and sd; the same transform applied unchanged to any other rows. NaNs are refused by
default with the genes and patients named; ``impute="train_mean"`` fills them with training means
and reports how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathviz.errors import PathVizError


@dataclass
class ExpressionScaler:
    """Fit on training expression, transform anything (see module docstring).

    Args:
        log: ``"auto"``, True or False.
        impute: ``"refuse"`` (default: NaN is an error) or ``"train_mean"``.
    """

    log: str | bool = "auto"
    impute: str = "refuse"
    report: list[str] = field(default_factory=list)

    def _check_nan(self, X: pd.DataFrame, where: str) -> pd.DataFrame:
        n_nan = int(X.isna().to_numpy().sum())
        if n_nan == 0:
            return X
        if self.impute == "refuse":
            genes = X.columns[X.isna().any()].tolist()
            pats = X.index[X.isna().any(axis=1)].tolist()
            raise PathVizError(
                f"{where} expression has {n_nan} missing values (genes e.g. {', '.join(map(str, genes[:3]))}; "
                f"patients e.g. {', '.join(map(str, pats[:3]))}).",
                "remove those genes/patients, or impute explicitly (impute='train_mean'); PathViz never drops them silently.",
            )
        self.report.append(f"{where}: {n_nan} missing values imputed with training means")
        return X.fillna(self.mean_raw_)

    def fit(self, X: pd.DataFrame) -> "ExpressionScaler":
        """Learn log decision, constant genes, means and sds on training expression ``X``
        (patients x genes).

        Raises:
            PathVizError: log requested on negative values; NaNs with ``impute="refuse"``.
        """
        X = X.astype(float)
        vals = X.to_numpy()
        finite = vals[np.isfinite(vals)]
        self.log_ = bool(self.log) if self.log != "auto" else bool(finite.size and finite.min() >= 0 and finite.max() > 50)
        if self.log_ and finite.size and finite.min() < 0:
            raise PathVizError("log2(x+1) requested but the expression has negative values.", "use log=False.")
        X = np.log2(X + 1) if self.log_ else X
        self.mean_raw_ = X.mean()
        X = self._check_nan(X, "training")
        sd = X.std(ddof=0)
        self.constant_ = sd.index[~(sd > 1e-12)].tolist()
        if self.constant_:
            self.report.append(f"{len(self.constant_)} genes constant on the training data dropped "
                               f"(e.g. {', '.join(map(str, self.constant_[:3]))})")
        self.genes_ = [g for g in X.columns if g not in set(self.constant_)]
        self.mean_ = X[self.genes_].mean()
        self.sd_ = sd[self.genes_]
        if self.log_:
            self.report.insert(0, "log2(x + 1) applied (training values looked like raw intensities/counts)")
        return self

    def transform(self, X: pd.DataFrame, where: str = "input") -> pd.DataFrame:
        """Z-scores of ``X`` (patients x genes) with the training statistics: DataFrame over
        ``genes_`` (constant training genes dropped); ``where`` names the rows in messages.

        Raises:
            PathVizError: NaNs with ``impute="refuse"``.
        """
        X = X.reindex(columns=self.genes_ + [c for c in X.columns if c in self.constant_]).astype(float)
        X = np.log2(X + 1) if self.log_ else X
        X = self._check_nan(X, where)[self.genes_]
        return (X - self.mean_) / self.sd_
