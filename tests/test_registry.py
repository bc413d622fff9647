"""The model registry: immutable versions written atomically (a killed writer leaves none),
concurrent writers never collide, tampering is detected by file, aliases promote and roll back
with their history kept, weights load without unpickling code, and the CLI speaks the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pathviz.cli import main
from pathviz.store.registry import ModelRegistry, RegistryError, load_torch_weights

from pathviz.auth.policy import operator

OPERATOR = operator()

ROOT = Path(__file__).resolve().parents[1]


def _writer(value: float):
    def write(folder: Path) -> dict:
        torch.save({"w": torch.full((3,), value)}, folder / "weights.pt")
        (folder / "model.json").write_text(json.dumps({"value": value}))
        return {"c_index": value}
    return write


def test_version_round_trip_and_resolution(tmp_path):
    reg = ModelRegistry(tmp_path)
    m1 = reg.create_version("coxpasnet", "gse1992-kegg", _writer(0.6), cohort="gse1992", data_digest="abc",
                            split_seed=0, params={"repeats": 1}, card={"intended_use": "research"})
    m2 = reg.create_version("coxpasnet", "gse1992-kegg", _writer(0.7), cohort="gse1992", parent=m1.ref)
    assert (m1.version, m2.version) == ("v0001", "v0002") and m2.parent == "coxpasnet/gse1992-kegg@v0001"
    assert set(m1.files) == {"weights.pt", "model.json"} and m1.metrics == {"c_index": 0.6}
    assert m1.created.endswith("+00:00") and m1.code_version.startswith("pathviz")
    assert reg.get("coxpasnet/gse1992-kegg").version == "v0002"  # no alias: newest
    reg.promote("coxpasnet/gse1992-kegg@v0001", actor=OPERATOR)
    assert reg.get("coxpasnet/gse1992-kegg").version == "v0001"  # the production alias wins
    assert reg.get("coxpasnet/gse1992-kegg@production") == reg.get("coxpasnet/gse1992-kegg@v0001")
    state = load_torch_weights(reg.path("coxpasnet/gse1992-kegg@v0002") / "weights.pt")
    assert torch.equal(state["w"], torch.full((3,), 0.7))


def test_missing_artifact_or_failing_writer_registers_nothing(tmp_path):
    reg = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="weights.pt"):
        reg.create_version("coxpasnet", "m", lambda d: (d / "model.json").write_text("{}") and None)
    with pytest.raises(ZeroDivisionError):
        reg.create_version("coxpasnet", "m", lambda d: 1 / 0)
    assert reg.versions() == [] and not list((tmp_path / "coxpasnet" / "m").glob(".tmp-*"))
    with pytest.raises(RegistryError, match="Unknown model kind 'coxpasnett'.*did you mean 'coxpasnet'"):
        reg.create_version("coxpasnett", "m", _writer(0.5))


def test_killed_writer_leaves_no_version_and_resubmission_succeeds(tmp_path):
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
            "from pathlib import Path\nfrom pathviz.store.registry import ModelRegistry\n"
            "def w(d):\n    (d / 'weights.pt').write_bytes(b'x' * 1000)\n    print('writing', flush=True)\n    time.sleep(60)\n"
            f"ModelRegistry({str(tmp_path)!r}).create_version('coxpasnet', 'm', w)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    reg = ModelRegistry(tmp_path)
    assert reg.versions() == [] and list((tmp_path / "coxpasnet" / "m").glob(".tmp-*"))  # debris, not a version (its lock is free)
    assert reg.create_version("coxpasnet", "m", _writer(0.5)).version == "v0001"
    assert not list((tmp_path / "coxpasnet" / "m").glob(".tmp-*"))


def test_concurrent_writers_get_distinct_versions(tmp_path):
    """8 processes register a version of one model at once (released together by a start file)."""
    go = tmp_path / "go"
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
            "from pathlib import Path\nfrom pathviz.store.registry import ModelRegistry\n"
            "def w(d):\n    (d / 'weights.pt').write_bytes(b'w')\n    (d / 'model.json').write_text('{}')\n"
            f"while not Path({str(go)!r}).exists(): time.sleep(0.01)\n"
            f"print(ModelRegistry({str(tmp_path / 'reg')!r}).create_version('coxpasnet', 'm', w).version)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    time.sleep(1.0)
    go.touch()
    got = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(got) == [f"v{i:04d}" for i in range(1, 9)]
    assert len(ModelRegistry(tmp_path / "reg").versions()) == 8


def test_tampered_or_missing_file_is_named(tmp_path):
    reg = ModelRegistry(tmp_path)
    m = reg.create_version("coxpasnet", "m", _writer(0.5))
    folder = tmp_path / "coxpasnet" / "m" / "v0001"
    (folder / "model.json").write_text('{"value": 0.99}')
    with pytest.raises(RegistryError, match="model.json was changed"):
        reg.path(m.ref)
    (folder / "model.json").unlink()
    with pytest.raises(RegistryError, match="model.json is missing"):
        reg.verify(m)
    with pytest.raises(RegistryError, match="model.json"):
        reg.promote(m.ref, actor=OPERATOR)  # a tampered version is never promoted


class Payload:  # an object torch would have to unpickle
    def __reduce__(self):
        return (print, ("pickle payload executed",))


def test_pickle_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"w": Payload()}, path)
    with pytest.raises(RegistryError, match="not a plain state dict"):
        load_torch_weights(path)
    with pytest.raises(RegistryError, match="missing"):
        load_torch_weights(tmp_path / "none.pt")


def test_promote_rollback_history(tmp_path):
    reg = ModelRegistry(tmp_path)
    for v in (0.5, 0.6, 0.7):
        reg.create_version("coxpasnet", "m", _writer(v))
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("coxpasnet/m", actor=OPERATOR)
    for v in ("v0001", "v0002", "v0003"):
        reg.promote(f"coxpasnet/m@{v}", actor=OPERATOR)
    reg.promote("coxpasnet/m@v0002", alias="candidate", actor=OPERATOR)
    assert reg.aliases("coxpasnet", "m") == {"production": "v0003", "candidate": "v0002"}
    assert reg.rollback("coxpasnet/m", actor=OPERATOR)["version"] == "v0002"
    assert reg.rollback("coxpasnet/m", actor=OPERATOR)["version"] == "v0001"
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("coxpasnet/m", actor=OPERATOR)
    hist = reg.alias_history("coxpasnet", "m")
    assert [(e["action"], e["version"]) for e in hist if e["alias"] == "production"] == [
        ("promote", "v0001"), ("promote", "v0002"), ("promote", "v0003"), ("rollback", "v0002"), ("rollback", "v0001")]
    assert reg.aliases("coxpasnet", "m")["candidate"] == "v0002"  # other aliases untouched
    for bad in ("coxpasnet/m", "coxpasnet/m@v0009"):
        with pytest.raises(RegistryError):
            reg.promote(bad, actor=OPERATOR)
    with pytest.raises(RegistryError, match="Invalid alias"):
        reg.promote("coxpasnet/m@v0001", alias="v0002", actor=OPERATOR)


def test_cli_models_commands(tmp_path, monkeypatch, capsys):
    home = tmp_path / "ws"
    monkeypatch.setenv("PATHVIZ_HOME", str(home))
    reg = ModelRegistry(home / "models")
    reg.create_version("coxpasnet", "gse1992-kegg", _writer(0.6), cohort="gse1992")
    reg.create_version("coxpasnet", "gse1992-kegg", _writer(0.7), cohort="gse1992")
    assert main(["models", "promote", "coxpasnet/gse1992-kegg@v0002"]) == 0
    assert main(["models", "list", "--json"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["versions"]
    assert [(r["ref"], r["aliases"]) for r in rows] == [("coxpasnet/gse1992-kegg@v0001", []),
                                                        ("coxpasnet/gse1992-kegg@v0002", ["production"])]
    assert main(["models", "show", "coxpasnet/gse1992-kegg"]) == 0
    assert "coxpasnet/gse1992-kegg@v0002" in capsys.readouterr().out
    assert main(["models", "rollback", "coxpasnet/gse1992-kegg"]) == 2  # v0002 was the first production holder
    assert main(["models", "show", "coxpasnet/gse1992-kegg1"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'coxpasnet/gse1992-kegg'" in err and " Fix: " in err
