"""Tables about registered models for the admin page and the CLI: every version of a model with
its held-out figures beside the no-learning baseline, and versions side by side.

Figures come from each version's manifest (written by its training job); nothing is recomputed.
"""

from __future__ import annotations

import pandas as pd

from pathviz.store.registry import USED_BY, Manifest, ModelRegistry


def _held(m: Manifest) -> dict:
    return m.metrics.get("held_out") or {}


def _baseline(m: Manifest) -> dict | None:
    """The clinical-only baseline's held-out C of a version (Cox-PASNet: ``clinical_baseline``;
    PAGE-Net: the clinical Cox on the same test patients)."""
    if m.metrics.get("clinical_baseline"):
        return m.metrics["clinical_baseline"]
    c = (m.metrics.get("test_c_index") or {}).get("clinical")
    return {"c_index": c} if c is not None else None


def c_label(d: dict | None) -> str:
    """``0.712 [0.651, 0.770]`` from a held-out dict (``c_index``, ``lower``, ``upper``); ``-`` if absent."""
    if not d or d.get("c_index") is None:
        return "-"
    if d.get("lower") is None:
        return f"{d['c_index']:.3f}"
    return f"{d['c_index']:.3f} [{d['lower']:.3f}, {d['upper']:.3f}]"


def verdict(m: Manifest) -> str:
    """``beats chance`` / ``NOT better than chance`` (95% CI includes 0.5) / ``not recorded``."""
    h = _held(m)
    if "lower" not in h:
        return "not recorded"
    return "beats chance" if h["lower"] > 0.5 else "NOT better than chance"


def versions_table(registry: ModelRegistry, kind: str, name: str) -> pd.DataFrame:
    """One row per version of ``kind/name``, newest first: version, aliases, created (UTC),
    held-out C-index [95% CI], clinical-only baseline, chance verdict, split seed, parameters,
    training data (cohort and digest), code version, parent."""
    aliases = registry.aliases(kind, name)
    by_version: dict[str, list[str]] = {}
    for a, v in aliases.items():
        by_version.setdefault(v, []).append(a)
    rows = []
    for m in reversed(registry.versions(kind, name)):
        rows.append({"version": m.version, "aliases": ", ".join(sorted(by_version.get(m.version, []))),
                     "created (UTC)": m.created.replace("T", " ").replace("+00:00", ""),
                     "held-out C [95% CI]": c_label(_held(m)), "clinical baseline C": c_label(_baseline(m)),
                     "verdict": verdict(m), "split seed": m.split_seed,
                     "params": ", ".join(f"{k}={v}" for k, v in m.params.items() if not isinstance(v, list)),
                     "training data": f"{m.cohort} ({m.data_digest})", "code": m.code_version, "parent": m.parent or ""})
    return pd.DataFrame(rows)


def compare_versions(manifests: list[Manifest]) -> pd.DataFrame:
    """Versions side by side (one column per version, one row per figure): held-out C with CI and
    its spread over splits, the clinical baseline, time-dependent AUC and calibration where the
    training job recorded them, training data, seed, parameters and code version."""
    cols = {}
    for m in manifests:
        h = _held(m)
        auc = m.metrics.get("td_auc") or {}
        cal = m.metrics.get("calibration") or {}
        col = {
            "held-out C [95% CI]": c_label(h),
            "spread over splits (sd)": (f"{h['sd']:.3f} over {len(h.get('splits') or [])} split(s)"
                                        if h.get("sd") is not None else "-"),
            "patients / events (held out)": f"{h.get('n', '-')} / {h.get('events', '-')}",
            "clinical baseline C": c_label(_baseline(m)),
            "verdict": verdict(m),
            "time-dependent AUC": (", ".join(f"{t:.0f} mo: {a:.3f}" for t, a in zip(auc["times"], auc["auc"]))
                                   if auc.get("times") else "not recorded"),
            "calibration (observed - predicted survival)": (
                f"at {cal['time']:.0f} mo: " + ", ".join(f"{g}: {d:+.3f}" for g, d in zip(cal["groups"], cal["difference"]))
                if cal.get("groups") else "not recorded"),
            "training data": f"{m.cohort} ({m.data_digest})",
            "split seed": str(m.split_seed),
            "params": ", ".join(f"{k}={v}" for k, v in m.params.items()),
            "created (UTC)": m.created,
            "code version": m.code_version,
        }
        cols[m.version] = col
    return pd.DataFrame(cols)


def usage_table(registry: ModelRegistry) -> pd.DataFrame:
    """Which version each page uses: one row per (page, model) with the version chosen
    (``production`` alias, else the newest) and why."""
    rows = []
    for kind, pages in USED_BY.items():
        for name, m in registry.chosen(kind).items():
            why = "production alias" if registry.aliases(kind, name).get("production") == m.version else "newest (no production alias)"
            for page in pages:
                rows.append({"page": page, "model": f"{kind}/{name}", "version": m.version, "chosen by": why})
    return pd.DataFrame(rows, columns=["page", "model", "version", "chosen by"])


def jobs_table(jobs) -> pd.DataFrame:
    """Finished jobs for the admin page: id, kind, status, parameters, the version it registered
    (or its error), run time in seconds."""
    return pd.DataFrame([{"job": j.id, "kind": j.kind, "status": j.status,
                          "params": ", ".join(f"{k}={v}" for k, v in j.params.items()),
                          "result": (j.result or {}).get("model", "") or j.error or "", "seconds": round(j.seconds() or 0)}
                         for j in jobs], columns=["job", "kind", "status", "params", "result", "seconds"])
