"""Streamlit helpers shared by the pages (workspace handle, tile server, viewer component)."""
