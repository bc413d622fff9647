"""Plotly figures for survival results (no Streamlit; pages only display them).

Kaplan-Meier plots follow the clinical-paper convention (survminer-style): step curves with 95% CI
bands, censor marks ("+"), the log-rank p and hazard ratios in the legend, and a number-at-risk
table under the plot sharing the time axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pathviz.survival import GroupComparison, format_p
from pathviz.survival.analyses import EffectByStratum

PALETTE = ["#2c7bb6", "#d7191c", "#fdae61", "#1a9641", "#7b3294", "#636363"]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def km_figure(comp: GroupComparison, title: str = "", highlight: str | None = None, time_label: str = "Months",
              colours: dict | None = None) -> go.Figure:
    """KM curves with CI bands, censor marks, legend statistics and a number-at-risk table.

    Args:
        comp: result of :func:`pathviz.survival.km_by_group`.
        highlight: group drawn emphasised (the patient's stratum); others are faded.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.06)
    hr_by_group = {h.term.split(" vs ")[0]: h for h in comp.hazard_ratios}
    for i, c in enumerate(comp.curves):
        col = (colours or {}).get(c.group, PALETTE[i % len(PALETTE)])
        faded = highlight is not None and c.group != highlight
        alpha_line = 0.35 if faded else 1.0
        x = np.r_[c.timeline]
        fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[c.upper, c.lower[::-1]], fill="toself", line_shape="hv",
                                 fillcolor=_rgba(col, 0.08 if faded else 0.18), line=dict(width=0), hoverinfo="skip",
                                 showlegend=False, legendgroup=c.group), row=1, col=1)
        h = hr_by_group.get(c.group)
        name = f"{c.group} (n={c.n}, events={c.events})"
        if h is not None:
            name += f"; HR {h.hr:.2f} [{h.lower:.2f}-{h.upper:.2f}]" if h.hr is not None else "; HR n/a"
        fig.add_trace(go.Scatter(x=x, y=c.survival, mode="lines", line_shape="hv", name=name, legendgroup=c.group,
                                 line=dict(color=_rgba(col, alpha_line), width=4 if c.group == highlight else 2),
                                 hovertemplate="%{x:.1f} mo: S=%{y:.3f}<extra>" + c.group + "</extra>"), row=1, col=1)
        if len(c.censor_times):
            fig.add_trace(go.Scatter(x=c.censor_times, y=c.censor_survival, mode="markers", showlegend=False,
                                     legendgroup=c.group, marker=dict(symbol="line-ns-open", size=8, color=_rgba(col, alpha_line)),
                                     hovertemplate="censored %{x:.1f} mo<extra></extra>"), row=1, col=1)
    # number at risk
    at = comp.at_risk
    for i, group in enumerate(at.index):
        fig.add_trace(go.Scatter(x=list(at.columns), y=[group] * len(at.columns), mode="text", text=[str(v) for v in at.loc[group]],
                                 showlegend=False, hoverinfo="skip",
                                 textfont=dict(color=(colours or {}).get(group, PALETTE[[c.group for c in comp.curves].index(group) % len(PALETTE)]
                                                     if group in [c.group for c in comp.curves] else "#333"))), row=2, col=1)
    stat = ""
    if comp.logrank is not None:
        stat = f"log-rank p={format_p(comp.logrank.p_value)}"
        if comp.trend is not None:
            stat += f", trend p={format_p(comp.trend.p_value)}"
    fig.update_yaxes(range=[0, 1.02], title_text="Survival probability", row=1, col=1)
    fig.update_yaxes(title_text="At risk", row=2, col=1, autorange="reversed")
    fig.update_xaxes(title_text=time_label, row=2, col=1, tickvals=list(at.columns))
    fig.update_layout(title=dict(text=(title + (" · " if title and stat else "") + stat)), height=520,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=80, b=50),
                      template="plotly_white")
    return fig


def survival_curve_figure(times, survival, title: str = "Predicted survival", reference=None) -> go.Figure:
    """One patient's predicted S(t) (optionally with a reference curve, e.g. the cohort KM)."""
    fig = go.Figure()
    if reference is not None:
        fig.add_trace(go.Scatter(x=reference[0], y=reference[1], mode="lines", line_shape="hv", name="cohort (KM)",
                                 line=dict(color="#999", dash="dot")))
    fig.add_trace(go.Scatter(x=times, y=survival, mode="lines", name="this patient", line=dict(color="#d7191c", width=3)))
    fig.update_layout(title=title, xaxis_title="Months", yaxis_title="Survival probability", yaxis_range=[0, 1.02],
                      height=360, template="plotly_white", margin=dict(l=60, r=20, t=60, b=50))
    return fig


def forest_figure(df: pd.DataFrame, label_col: str = "term", title: str = "") -> go.Figure:
    """Forest plot of hazard ratios (log x axis) from rows with ``hazard_ratio, lower_95, upper_95,
    p_value`` and a label column; non-estimable rows are listed with their note."""
    d = df.reset_index(drop=True)
    labels = d[label_col].astype(str).tolist()
    fig = go.Figure()
    ok = d["hazard_ratio"].notna()
    fig.add_trace(go.Scatter(
        x=d.loc[ok, "hazard_ratio"], y=[labels[i] for i in d.index[ok]], mode="markers",
        marker=dict(symbol="square", size=10, color="#2c7bb6"),
        error_x=dict(type="data", symmetric=False, array=(d.loc[ok, "upper_95"] - d.loc[ok, "hazard_ratio"]),
                     arrayminus=(d.loc[ok, "hazard_ratio"] - d.loc[ok, "lower_95"])),
        text=[f"HR {h:.2f} ({lo:.2f}-{hi:.2f}), p={format_p(p)}" for h, lo, hi, p in
              d.loc[ok, ["hazard_ratio", "lower_95", "upper_95", "p_value"]].itertuples(index=False)],
        hovertemplate="%{y}: %{text}<extra></extra>", showlegend=False))
    for i in d.index[~ok]:
        fig.add_annotation(x=0, xref="paper", y=labels[i], text=f"not estimable: {d.loc[i].get('note', '')}", showarrow=False,
                           xanchor="left", font=dict(size=10, color="#a33"))
    fig.add_vline(x=1.0, line_dash="dash", line_color="#888")
    fig.update_xaxes(type="log", title_text="Hazard ratio (95% CI)")
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=labels)
    fig.update_layout(title=title, height=max(240, 40 * len(d) + 100), template="plotly_white",
                      margin=dict(l=180, r=20, t=50, b=50))
    return fig


def effect_by_stratum_figure(effect: EffectByStratum, title: str) -> go.Figure:
    """Side-by-side KM plots of a binary factor inside each risk stratum, interaction p in the title."""
    n = len(effect.strata)
    fig = make_subplots(rows=1, cols=max(n, 1), shared_yaxes=True,
                        subplot_titles=[f"{s.stratum} risk: {s.hazard_ratio.label().split(': ', 1)[-1]}" for s in effect.strata])
    for j, s in enumerate(effect.strata, start=1):
        for i, c in enumerate(s.comparison.curves):
            col = PALETTE[i % len(PALETTE)]
            fig.add_trace(go.Scatter(x=np.r_[c.timeline, c.timeline[::-1]], y=np.r_[c.upper, c.lower[::-1]], fill="toself",
                                     line_shape="hv", fillcolor=_rgba(col, 0.15), line=dict(width=0), hoverinfo="skip",
                                     showlegend=False), row=1, col=j)
            fig.add_trace(go.Scatter(x=c.timeline, y=c.survival, mode="lines", line_shape="hv", line=dict(color=col, width=2),
                                     name=c.group, legendgroup=c.group, showlegend=(j == 1)), row=1, col=j)
        fig.update_xaxes(title_text="Months", row=1, col=j)
    fig.update_yaxes(range=[0, 1.02], title_text="Survival probability", row=1, col=1)
    p = f"interaction p={format_p(effect.interaction_p)}" if effect.interaction_p is not None else effect.interaction_note
    fig.update_layout(title=f"{title} · {p}", height=420, template="plotly_white", margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def heatmap_figure(values: pd.DataFrame, title: str = "", colorbar: str = "z") -> go.Figure:
    """Heatmap of a patients x features table (rows in the given order), diverging colours around 0."""
    lim = float(np.nanmax(np.abs(values.to_numpy()))) if values.size else 1.0
    fig = go.Figure(go.Heatmap(z=values.to_numpy().T, x=list(map(str, values.index)), y=list(map(str, values.columns)),
                               colorscale="RdBu_r", zmin=-lim, zmax=lim, colorbar=dict(title=colorbar)))
    fig.update_layout(title=title, height=max(300, 22 * values.shape[1] + 120), template="plotly_white",
                      xaxis=dict(showticklabels=False, title="patients (ordered by prognostic index, low to high)"),
                      margin=dict(l=220, r=20, t=50, b=50))
    return fig
