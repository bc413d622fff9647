"""Cohort widgets shared by the pages."""

from __future__ import annotations

import streamlit as st

from pathviz.cohort import load_cohort


def endpoint_selectbox(cohort_name: str, key: str, help: str) -> tuple[str, dict[str, str]]:
    """A selectbox of ``cohort_name``'s survival endpoints (its primary one on a first visit or
    after the cohort changed; disabled when there is only one).

    Returns:
        ``(chosen endpoint key, {key: label} of the cohort's endpoints, primary first)``.
    """
    ends = {e.key: e.label for e in load_cohort(cohort_name).endpoints}
    if st.session_state.get(key) not in ends:
        st.session_state[key] = next(iter(ends))
    chosen = st.selectbox("Endpoint", list(ends), format_func=lambda k: f"{ends[k]} ({k})", key=key,
                          disabled=len(ends) < 2, help=help)
    return chosen, ends
