"""PathViz backend: slides, tissue masks, tile grids, score layers, reviews and exports.

The backend never imports Streamlit; the dashboard (``app.py`` and ``pages/``) calls into it.
"""

__version__ = "0.1.0"
