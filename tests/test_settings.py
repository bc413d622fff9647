"""Settings from the environment and device selection."""

from __future__ import annotations

import pytest
import torch

from pathviz.settings import Settings, torch_device


def test_settings_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("PATHVIZ_SLIDE_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    s = Settings.from_env()
    assert s.home == (tmp_path / "h").resolve()
    assert s.database_url == f"sqlite:///{s.home / 'pathviz.db'}"
    assert s.slide_roots == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())


def test_torch_device_picks_cuda_only_when_present():
    assert torch_device("cpu") == "cpu"
    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            torch_device("cuda")
    x = torch.ones(3, device=torch_device())
    assert float(x.sum()) == 3.0


def test_no_tile_server_settings(tmp_path, monkeypatch):
    """Tiles come from the app's own server: the old second server's variables are gone (and ignored)."""
    monkeypatch.setenv("PATHVIZ_TILE_PORT", "not-a-port")  # once parsed as int: must not break anything now
    s = Settings.from_env(tmp_path / "h")
    assert not {"tile_host", "tile_port", "tile_public_url"} & set(vars(s))
