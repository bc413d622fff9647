"""The slide viewer's backend: DeepZoom tile service and caches (:mod:`~pathviz.viewer.tiles`), its
process-wide instance (:mod:`~pathviz.viewer.shared`), the tile routes the dashboard's own server
serves (:mod:`~pathviz.viewer.routes`, needs Starlette, which Streamlit ships) and the patch detail
view's map images (:mod:`~pathviz.viewer.maps`).

Nothing is imported here, so ``import pathviz.viewer.tiles`` does not pull in Starlette.
"""
