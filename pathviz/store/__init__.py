"""The database (SQLite by default, through SQLAlchemy): slides and patch reviews."""

from pathviz.store.db import Database
from pathviz.store.models import Review, SlideRecord

__all__ = ["Database", "Review", "SlideRecord"]
