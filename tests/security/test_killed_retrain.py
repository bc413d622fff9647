"""A retrain killed with SIGKILL leaves the previous version intact (trust issue): v0001 of a small
real model is registered and promoted, then a second training runs as its own OS process and is
killed at several points (while its weights are being saved, right after they are saved, while the
files are hashed, holding the model's lock while the manifest is prepared, just before the rename
into place). After each kill: v0001's files verify, no half version is listed, the aliases are
unchanged, and the next training registers cleanly, the dead writer's temporary folder removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pathviz.store.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]

# The retrain: a real (small) torch model saved through ModelRegistry.create_version, as the training
# jobs do. ``STAGE`` names where the process announces itself on stdout and then waits to be killed.
SCRIPT = r"""
import io, os, sys, time, json
sys.path.insert(0, {root!r})
import torch
import pathviz.store.registry as registry
from pathviz.store.registry import ModelRegistry

stage = {stage!r}

def hold(name):
    if stage == name:
        print(name, flush=True)
        time.sleep(120)

class SlowFile(io.FileIO):
    # writes the weights in small pieces; announces itself half way through the save
    written = 0
    def write(self, b):
        n = 0
        view = memoryview(b)
        while n < len(view):
            n += super().write(view[n:n + 4096])
            SlowFile.written += 4096
            if SlowFile.written >= 200_000:
                hold("mid_save")
        return n

def write(folder):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(200, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1))
    with SlowFile(folder / "weights.pt", "w") as f:
        torch.save(net.state_dict(), f)
    hold("after_save")
    (folder / "model.json").write_text(json.dumps({{"kind": "coxpasnet", "layers": [200, 400, 1]}}))
    return {{"c_index": 0.61}}

real_sha, real_code, real_rename = registry.sha256_file, registry.code_version, os.rename
def sha(p):
    hold("hashing")
    return real_sha(p)
def code():
    hold("locked")  # called under the model's lock, before the manifest is written
    return real_code()
def rename(a, b):
    if "/.tmp-" in str(a) and os.path.basename(str(b)).startswith("v"):  # the version folder's move into place
        hold("before_rename")
    return real_rename(a, b)
registry.sha256_file, registry.code_version, os.rename = sha, code, rename
man = ModelRegistry({models!r}).create_version("coxpasnet", "small", write, cohort="gse4335", split_seed=0,
                                               params={{"seed": 0}}, parent="coxpasnet/small@v0001")
print("registered", man.version, flush=True)
"""

STAGES = ["mid_save", "after_save", "hashing", "locked", "before_rename"]


def _retrain(models: Path, stage: str) -> subprocess.Popen:
    code = SCRIPT.format(root=str(ROOT), stage=stage, models=str(models))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _first_version(reg: ModelRegistry):
    def write(folder: Path) -> dict:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(200, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1))
        torch.save(net.state_dict(), folder / "weights.pt")
        (folder / "model.json").write_text('{"kind": "coxpasnet"}')
        return {"c_index": 0.6}

    man = reg.create_version("coxpasnet", "small", write, cohort="gse4335", split_seed=0, params={"seed": 0})
    _promote(reg, man.ref)
    _promote(reg, man.ref, "candidate")
    return man


def _promote(reg: ModelRegistry, ref: str, alias: str = "production") -> None:
    """Promote as the system (promotion takes an ``actor`` where the registry checks permissions)."""
    import inspect

    if "actor" in inspect.signature(reg.promote).parameters:
        from pathviz.auth.policy import SYSTEM

        reg.promote(ref, alias, actor=SYSTEM)
    else:
        reg.promote(ref, alias)


@pytest.fixture
def registry(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    v1 = _first_version(reg)
    return reg, v1


def _check_intact(reg: ModelRegistry, v1, aliases: dict, expected_versions: list[str]) -> None:
    versions = reg.versions("coxpasnet", "small")
    assert [m.version for m in versions] == expected_versions  # no half version listed
    assert reg.get("coxpasnet/small@v0001") == v1
    reg.verify(v1)  # every file of v0001 as recorded
    assert reg.aliases("coxpasnet", "small") == aliases
    assert reg.get("coxpasnet/small").version == "v0001"  # production still serves v0001
    folder = reg.root / "coxpasnet" / "small"
    assert sorted(p.name for p in folder.glob("v[0-9]*")) == expected_versions  # not even a folder


@pytest.mark.parametrize("stage", STAGES)
def test_killed_retrain_leaves_previous_version_and_aliases(registry, stage):
    reg, v1 = registry
    aliases = reg.aliases("coxpasnet", "small")
    proc = _retrain(reg.root, stage)
    try:
        line = proc.stdout.readline().strip()
        assert line == stage, line + proc.stdout.read()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    folder = reg.root / "coxpasnet" / "small"
    debris = list(folder.glob(".tmp-*"))
    assert len(debris) == 1  # the dead writer's temporary folder, never a version
    _check_intact(reg, v1, aliases, ["v0001"])
    # the lock the killed process held (stage "locked") was released by its death; the next
    # training registers v0002 and removes the dead writer's folder at once (its lock file is free)
    done = _retrain(reg.root, "none")
    out, _ = done.communicate(timeout=120)
    assert done.returncode == 0 and "registered v0002" in out, out
    assert not list(folder.glob(".tmp-*"))
    v2 = reg.get("coxpasnet/small@v0002")
    reg.verify(v2)
    assert v2.parent == "coxpasnet/small@v0001" and v2.metrics == {"c_index": 0.61}
    assert reg.aliases("coxpasnet", "small") == aliases  # a new version moves no alias
    reg.verify(v1)


def test_kills_at_many_moments_never_leave_a_half_version(registry):
    """Kill the retrain after a range of delays (wherever it happens to be), several times over."""
    import time

    reg, v1 = registry
    aliases = reg.aliases("coxpasnet", "small")
    expected = ["v0001"]
    for delay in (0.05, 0.3, 0.8, 1.5, 2.5, 4.0):
        proc = _retrain(reg.root, "none")
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        listed = [m.version for m in reg.versions("coxpasnet", "small")]
        if len(listed) > len(expected):  # it finished before the kill: a whole version, never a half one
            expected.append(f"v{len(expected) + 1:04d}")
            reg.verify(reg.get(f"coxpasnet/small@{expected[-1]}"))
        _check_intact(reg, v1, aliases, expected)
    done = _retrain(reg.root, "none")
    out, _ = done.communicate(timeout=120)
    assert done.returncode == 0 and f"registered v{len(expected) + 1:04d}" in out, out
    assert not list((reg.root / "coxpasnet" / "small").glob(".tmp-*"))
