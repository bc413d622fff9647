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

from pathviz.survival import GroupComparison, HazardRatio, p_label
from pathviz.survival.analyses import EffectByStratum

PALETTE = ["#2c7bb6", "#d7191c", "#fdae61", "#1a9641", "#7b3294", "#636363"]
#: Colours of the cut-off labels (:func:`pathviz.survival.cutoffs._labels`): low blue, intermediate orange,
#: high red, whatever the number of groups, so "high" is red for a median and for tertiles alike.
RISK_COLOURS = {"low": "#2c7bb6", "intermediate": "#e08214", "high": "#d7191c"}
#: Text colour of the number-at-risk table (dark grey on the white template).
TEXT_DARK = "#222222"


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _group_colours(groups: list[str], colours: dict | None = None) -> dict[str, str]:
    """Group -> hex colour: ``colours`` first, then :data:`RISK_COLOURS` when every group is a risk
    label, else :data:`PALETTE` in group order."""
    colours = colours or {}
    risk = all(g in RISK_COLOURS for g in groups)
    return {g: colours.get(g, RISK_COLOURS[g] if risk else PALETTE[i % len(PALETTE)]) for i, g in enumerate(groups)}


def _step_band(x, upper, lower) -> tuple[np.ndarray, np.ndarray]:
    """Closed polygon of a step-function confidence band (right-continuous steps, as the KM curve
    drawn with ``line_shape="hv"``): upper steps left to right, lower steps right to left. Drawn
    with ``mode="lines"`` and linear segments so no marker and no mis-stepped return path appear."""
    x = np.asarray(x, float)
    up, lo = np.asarray(upper, float), np.asarray(lower, float)
    if len(x) == 0:
        return np.array([]), np.array([])
    xs = np.r_[np.repeat(x, 2)[1:], x[-1]]  # x0, x1, x1, x2, x2, ..., xk, xk
    ys_up = np.repeat(up, 2)
    ys_lo = np.repeat(lo, 2)
    return np.r_[xs, xs[::-1]], np.r_[ys_up, ys_lo[::-1]]


def _band_trace(x, upper, lower, fillcolor: str, **kw) -> go.Scatter:
    """CI band: a filled polygon with ``mode="lines"`` (never markers) and an invisible outline."""
    bx, by = _step_band(x, upper, lower)
    return go.Scatter(x=bx, y=by, mode="lines", fill="toself", fillcolor=fillcolor, line=dict(width=0),
                      hoverinfo="skip", showlegend=False, **kw)


def _hr_text(h: HazardRatio | None) -> str:
    """``"HR 0.45 (95% CI 0.20-1.01), p = 0.052"`` or ``"HR not estimable (note)"``."""
    if h is None:
        return "HR n/a"
    if h.hr is None:
        return f"HR not estimable ({h.note})" if h.note else "HR not estimable"
    return f"HR {h.hr:.2f} (95% CI {h.lower:.2f}-{h.upper:.2f}), {p_label(h.p_value)}"


def km_figure(comp: GroupComparison, title: str = "", highlight: str | None = None, time_label: str = "Months",
              colours: dict | None = None) -> go.Figure:
    """KM curves with CI bands, censor marks, legend statistics and a number-at-risk table.

    Args:
        comp: result of :func:`pathviz.survival.km_by_group` (times in months).
        title: figure title; the log-rank (and trend) p is appended as ``"log-rank p = 0.012"``.
        highlight: group drawn emphasised (the patient's stratum); others are faded.
        time_label: x-axis title.
        colours: optional ``{group: "#rrggbb"}``; default low/intermediate/high = blue/orange/red,
            other labels :data:`PALETTE` in curve order.

    Returns:
        A two-row figure: survival (row 1; bands are ``mode="lines"`` fills, never markers) and
        the number at risk (row 2; dark numbers, each row labelled by its group name in the group's
        colour), on the ``plotly_white`` template.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.06)
    hr_by_group = {h.term.split(" vs ")[0]: h for h in comp.hazard_ratios}
    groups = [c.group for c in comp.curves]
    at = comp.at_risk
    col_of = _group_colours(groups + [str(g) for g in at.index if str(g) not in groups], colours)
    for c in comp.curves:
        col = col_of[c.group]
        faded = highlight is not None and c.group != highlight
        alpha_line = 0.35 if faded else 1.0
        x = np.r_[c.timeline]
        fig.add_trace(_band_trace(x, c.upper, c.lower, _rgba(col, 0.08 if faded else 0.18), legendgroup=c.group),
                      row=1, col=1)
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
    # number at risk: dark numbers; the row label (y tick) carries the group's colour
    rows = [g for g in groups if g in set(map(str, at.index))] + [str(g) for g in at.index if str(g) not in groups]
    at = at.set_axis([str(g) for g in at.index], axis=0)
    for group in rows:
        fig.add_trace(go.Scatter(x=list(at.columns), y=[group] * len(at.columns), mode="text",
                                 text=[str(v) for v in at.loc[group]], showlegend=False, hoverinfo="skip",
                                 textfont=dict(color=TEXT_DARK, size=12)), row=2, col=1)
    stat = ""
    if comp.logrank is not None:
        stat = p_label(comp.logrank.p_value, "log-rank p")
        if comp.trend is not None:
            stat += ", " + p_label(comp.trend.p_value, "trend p")
    fig.update_yaxes(range=[0, 1.02], title_text="Survival probability", row=1, col=1)
    # first group on top; half a row of padding each side so no number is clipped
    fig.update_yaxes(title_text="At risk", row=2, col=1, range=[len(rows) - 0.4, -0.6], type="category", categoryorder="array",
                     categoryarray=rows, tickmode="array", tickvals=rows, showgrid=False, zeroline=False,
                     ticktext=[f"<b><span style='color:{col_of[g]}'>{g}</span></b>" for g in rows])
    fig.update_xaxes(title_text=time_label, row=2, col=1, tickvals=list(at.columns))
    fig.update_layout(title=dict(text=(title + (" · " if title and stat else "") + stat)), height=520,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=80, b=50),
                      template="plotly_white", font=dict(color=TEXT_DARK))
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


#: Longest line (characters) of a forest-plot label before it is wrapped with ``<br>``.
LABEL_WRAP = 28
_BREAK_AFTER = " =:_/,"


def wrap_label(text: str, width: int = LABEL_WRAP) -> str:
    """Wrap a label for a plotly axis with ``<br>`` so no line is longer than ``width`` characters.

    Breaks go after a space, ``=``, ``:``, ``_``, ``/`` or ``,`` (a word longer than ``width`` is
    split where it reaches ``width``); nothing is dropped or abbreviated, so
    ``wrap_label(t).replace("<br>", "") == t``.

    Args:
        text: the label (plain text).
        width: longest line, characters (>= 1).

    Returns:
        The label with ``<br>`` inserted (unchanged when it is at most ``width`` long).
    """
    width = max(int(width), 1)
    lines, rest = [], str(text)
    while len(rest) > width:
        cut = max((i + 1 for i, ch in enumerate(rest[:width]) if ch in _BREAK_AFTER), default=0)
        if cut <= width // 3:  # no break point, or only a very early one: split the long word
            cut = width
        lines.append(rest[:cut])
        rest = rest[cut:]
    lines.append(rest)
    return "<br>".join(lines)


def _label_margin(wrapped: list[str]) -> int:
    """Left margin (px) for wrapped y labels: about 7 px per character of the longest line."""
    longest = max((len(line) for w in wrapped for line in w.split("<br>")), default=0)
    return int(min(max(7 * longest + 30, 80), 420))


def forest_figure(df: pd.DataFrame, label_col: str = "term", title: str = "", wrap: int = LABEL_WRAP) -> go.Figure:
    """Forest plot of hazard ratios (log x axis).

    Args:
        df: rows with ``hazard_ratio, lower_95, upper_95, p_value`` (unitless; NaN/None when not
            estimable, optionally with a ``note``) and a label column, e.g.
            :meth:`CoxTable.to_frame` or :func:`pathviz.survival.subgroup_hazard_ratios`.
        label_col: column with the row labels; labels are shown in full, wrapped with ``<br>``
            after ``wrap`` characters (:func:`wrap_label`), with the left margin sized to the
            longest line.
        title: figure title.

    Returns:
        One row per input row, in input order top to bottom; non-estimable rows keep their
        place and show their note.
    """
    d = df.reset_index(drop=True)
    full = d[label_col].astype(str).tolist()
    labels = [wrap_label(t, wrap) for t in full]
    fig = go.Figure()
    ok = d["hazard_ratio"].notna().to_numpy()
    hr = pd.to_numeric(d["hazard_ratio"], errors="coerce").to_numpy(float)
    lo = pd.to_numeric(d["lower_95"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(d["upper_95"], errors="coerce").to_numpy(float)
    pv = d["p_value"].tolist()
    text = [f"HR {hr[i]:.2f} ({lo[i]:.2f}-{hi[i]:.2f}), {p_label(pv[i])}" if ok[i] else
            f"not estimable: {d.loc[i].get('note', '')}" for i in range(len(d))]
    # every row is in the trace (x = NaN when not estimable) so every label is a category of the axis
    fig.add_trace(go.Scatter(
        x=hr, y=labels, mode="markers", marker=dict(symbol="square", size=10, color="#2c7bb6"),
        error_x=dict(type="data", symmetric=False, array=hi - hr, arrayminus=hr - lo, color="#2c7bb6"),
        customdata=full, text=text, hovertemplate="%{customdata}: %{text}<extra></extra>", showlegend=False))
    for i in np.flatnonzero(~ok):
        fig.add_annotation(x=0, xref="paper", y=labels[i], text=f"not estimable: {d.loc[i].get('note', '')}", showarrow=False,
                           xanchor="left", font=dict(size=10, color="#a33"))
    fig.add_vline(x=1.0, line_dash="dash", line_color="#888")
    fig.update_xaxes(type="log", title_text="Hazard ratio (95% CI)")
    fig.update_yaxes(autorange="reversed", type="category", categoryorder="array", categoryarray=labels,
                     tickmode="array", tickvals=labels, ticktext=labels, automargin=True)
    n_lines = sum(lab.count("<br>") + 1 for lab in labels)
    fig.update_layout(title=title, height=max(240, 30 * len(d) + 16 * n_lines + 100), template="plotly_white",
                      margin=dict(l=_label_margin(labels), r=20, t=50, b=50))
    return fig


def effect_by_stratum_figure(effect: EffectByStratum, title: str) -> go.Figure:
    """Side-by-side KM plots of a binary factor inside each risk stratum.

    Args:
        effect: :func:`pathviz.survival.marker_by_stratum` or :func:`treatment_by_stratum` output.
        title: figure title; the interaction p (``"interaction p = 0.012"``) or the reason there
            is none is appended.

    Returns:
        One column per stratum, titled with the stratum's HR (``"high risk: HR 0.45 (95% CI
        0.20-1.01), p = 0.052"``); CI bands are ``mode="lines"`` fills (no markers).
    """
    n = len(effect.strata)
    fig = make_subplots(rows=1, cols=max(n, 1), shared_yaxes=True,
                        subplot_titles=[f"{s.stratum} risk: {_hr_text(s.hazard_ratio)}" for s in effect.strata])
    for j, s in enumerate(effect.strata, start=1):
        for i, c in enumerate(s.comparison.curves):
            col = PALETTE[i % len(PALETTE)]
            fig.add_trace(_band_trace(c.timeline, c.upper, c.lower, _rgba(col, 0.15), legendgroup=c.group), row=1, col=j)
            fig.add_trace(go.Scatter(x=c.timeline, y=c.survival, mode="lines", line_shape="hv", line=dict(color=col, width=2),
                                     name=c.group, legendgroup=c.group, showlegend=(j == 1)), row=1, col=j)
        fig.update_xaxes(title_text="Months", row=1, col=j)
    fig.update_yaxes(range=[0, 1.02], title_text="Survival probability", row=1, col=1)
    p = p_label(effect.interaction_p, "interaction p") if effect.interaction_p is not None else effect.interaction_note
    fig.update_layout(title=f"{title} · {p}" if p else title, height=420, template="plotly_white",
                      margin=dict(l=60, r=20, t=90, b=50), legend=dict(orientation="h", y=-0.25))
    fig.update_annotations(font_size=13)
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
