"""The model registry: every trained model is an immutable, verifiable *version* with a manifest,
and *aliases* (``production``, ``candidate``...) say which version the product uses.

Layout (under ``$PATHVIZ_HOME/models``)::

    <kind>/<name>/v0001/manifest.json   kind, name, version, created (UTC), code version, cohort
                                         and data digest, split seed, params, metrics, parent,
                                         status, model card, and the SHA-256 of every file
    <kind>/<name>/v0001/<artifacts>     written by the kind's training job
    <kind>/<name>/aliases.json          {alias: version}
    <kind>/<name>/aliases.log           one JSON line per alias move (append-only history)

A version is written into a temporary folder beside its final place and renamed into place once
every file and the manifest are on disk (``os.rename`` is atomic on one file system), so a
half-written version never exists; a killed writer leaves only a ``.tmp-*`` folder that the next
:meth:`ModelRegistry.create_version` of that model removes. Version numbers are taken under an
exclusive lock (``fcntl.flock``) so concurrent trainings of one model never collide. Aliases follow
MLflow's registered-model aliases; kinds are registered by name like timm's ``@register_model``.
Weights are read only through :func:`load_torch_weights` (``torch.load(weights_only=True)``) after
:meth:`ModelRegistry.verify` has checked every file against its recorded SHA-256.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from pathviz.errors import PathVizError, unknown_fix

MANIFEST = "manifest.json"
WRITING = ".writing"  # lock file inside a temporary version folder while its writer lives
DEFAULT_ALIAS = "production"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REF = re.compile(r"^(?P<kind>[^/@]+)/(?P<name>[^/@]+)(@(?P<tag>[^/@]+))?$")


class RegistryError(PathVizError):
    """A registry request cannot be met (unknown kind/model/version/alias, tampered or missing file)."""


@dataclass(frozen=True)
class ModelKind:
    """A family of models the registry holds (``coxpasnet``, ``pagenet``, ``coxnet``...).

    Attributes:
        name: registry id of the kind.
        description: one line for the admin page and ``pathviz models list``.
        required_files: artifact file names every version of the kind must contain.
        params: declared hyper-parameters ``{name: {"default": v, "min": a, "max": b, "help": s}}``
            (the admin page's forms are generated from them).
    """

    name: str
    description: str
    required_files: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)


_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> ModelKind:
    """Register (or replace) a model kind; returns it (usable at import time of the kind's module)."""
    if not _NAME.match(kind.name):
        raise RegistryError(f"Invalid model kind name {kind.name!r}.", "use letters, digits, '.', '_' or '-'.")
    _KINDS[kind.name] = kind
    return kind


def model_kinds() -> dict[str, ModelKind]:
    """The registered kinds by name."""
    return dict(_KINDS)


register_kind(ModelKind("coxpasnet", "Cox-PASNet: pathway-informed Cox network (genes -> pathways -> Cox, seed 000)",
                        ("weights.pt", "model.json"),
                        {"genesets": {"default": "kegg", "help": "gene-set library: kegg, go_bp, or an added GMT file's path"},
                         "seed": {"default": 0, "min": 0, "max": 10_000, "help": "split seed"},
                         "repeats": {"default": 1, "min": 1, "max": 20, "help": "repeated splits (held-out C spread)"},
                         "min_size": {"default": 15, "min": 2, "max": 1000, "help": "smallest gene set kept (genes)"},
                         "max_size": {"default": 300, "min": 5, "max": 5000, "help": "largest gene set kept (genes)"},
                         "min_coverage": {"default": 0.5, "min": 0.0, "max": 1.0,
                                          "help": "least fraction of a set's genes measured in the cohort"},
                         "endpoint": {"default": "", "help": "survival endpoint key (os, dss, pfi, dfs...; "
                                      "`pathviz cohort show NAME` lists them); empty = the cohort's primary endpoint"},
                         "missing_omics": {"default": "exclude", "choices": ["exclude", "impute"],
                                           "help": "patients without expression: exclude (counted) or impute "
                                                   "training-row gene means"}}))
register_kind(ModelKind("pagenet", "PAGE-Net: slides + expression + age (seed 000)", ("pagenet.pt", "cnn.pt"),
                        {"seed": {"default": 0, "min": 0, "max": 10_000, "help": "split seed"},
                         "epochs_cnn": {"default": 6, "min": 1, "max": 50, "help": "patch-CNN pre-training epochs"}}))
_MIL_PARAMS = {"seed": {"default": 0, "min": 0, "max": 10_000, "help": "split seed"},
     "encoder": {"default": "resnet18", "help": "patch encoder: resnet18, resnet50, pagenet_cnn or timm:<model>"},
     "weights": {"default": "", "help": "encoder weights file added to this workspace ($PATHVIZ_HOME/weights/; "
                 "`pathviz train mil --weights FILE` adds one); empty = random initialisation"},
     "bag_size": {"default": 32, "min": 0, "max": 4096, "help": "patches sampled per patient per training step (0 = all)"}}
register_kind(ModelKind("attention_mil", "Gated attention MIL over patch features, Cox head (Ilse et al. 2018)",
                        ("model.pt", "model.json"), dict(_MIL_PARAMS)))
register_kind(ModelKind("crossattn", "RNA-to-patch cross-attention, Cox head (seed 003)", ("model.pt", "model.json"),
                        dict(_MIL_PARAMS)))
register_kind(ModelKind("coxnet", "Elastic-net Cox on clinical covariates and expression", (),
                        {"seed": {"default": 0, "min": 0, "max": 10_000, "help": "split seed"},
                         "l1_ratio": {"default": 0.5, "min": 0.01, "max": 1.0, "help": "elastic-net mixing"}}))


@dataclass(frozen=True)
class Manifest:
    """What a version is and how it was made (``manifest.json``; JSON-ready with :meth:`to_dict`).

    Attributes:
        kind, name, version: ``kind/name@vNNNN``.
        created: UTC time, ISO 8601.
        code_version: ``pathviz <package version>`` plus ``git <commit>`` when available.
        cohort, data_digest: training cohort and a digest of the data it was trained on.
        split_seed: the seed of the training/validation split.
        params: hyper-parameters; metrics: held-out figures (C-index with CI...).
        parent: the version this one was derived from (retraining), or None.
        status: ``ready`` (only ready versions are ever renamed into place).
        card: model card fields (intended use, data, metrics, limits).
        files: ``{relative path: sha256}`` of every artifact.
    """

    kind: str
    name: str
    version: str
    created: str
    code_version: str
    cohort: str
    data_digest: str
    split_seed: int | None
    params: dict
    metrics: dict
    parent: str | None
    status: str
    card: dict
    files: dict

    @property
    def ref(self) -> str:
        """``kind/name@version``."""
        return f"{self.kind}/{self.name}@{self.version}"

    def to_dict(self) -> dict:
        return asdict(self)


def code_version() -> str:
    """``pathviz <version>`` and, in a git checkout, ``git <short commit>[+dirty]``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        out = f"pathviz {version('pathviz')}"
    except PackageNotFoundError:
        out = "pathviz (not installed)"
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        if commit:
            out += f" git {commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_ref(ref: str) -> tuple[str, str, str | None]:
    """``kind/name[@version|@alias]`` -> ``(kind, name, tag or None)``.

    Raises:
        RegistryError: malformed reference.
    """
    m = _REF.match(str(ref).strip())
    if not m:
        raise RegistryError(f"{ref!r} is not a model reference.", "write KIND/NAME, KIND/NAME@v0003 or KIND/NAME@production.")
    return m["kind"], m["name"], m["tag"]


class ModelRegistry:
    """Versions and aliases of every model kind under one folder (see module docstring).

    Args:
        root: the registry folder (``Workspace.models_dir``).
        audit: the workspace's :class:`~pathviz.auth.audit.AuditLog`; alias moves are recorded
            there (``model.promoted``, ``model.rolled_back``) besides the model's own
            ``aliases.log``. Pages and the CLI use ``Workspace.registry()``, which passes it.
    """

    def __init__(self, root: str | Path, audit=None):
        self.root = Path(root)
        self.audit = audit

    # -- paths ------------------------------------------------------------------------------
    def _model_dir(self, kind: str, name: str) -> Path:
        for part, what in ((kind, "kind"), (name, "name")):
            if not _NAME.match(part):
                raise RegistryError(f"Invalid model {what} {part!r}.", "use letters, digits, '.', '_' or '-' (no '/').")
        return self.root / kind / name

    @contextmanager
    def _lock(self, kind: str, name: str) -> Iterator[None]:
        folder = self._model_dir(kind, name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- write --------------------------------------------------------------------------------
    def create_version(self, kind: str, name: str, write: Callable[[Path], dict | None], *, cohort: str = "",
                       data_digest: str = "", split_seed: int | None = None, params: dict | None = None,
                       parent: str | None = None, card: dict | None = None) -> Manifest:
        """Write a new immutable version: ``write(folder)`` fills a temporary folder with the
        artifacts and may return its metrics; the manifest is added and the folder renamed into place.

        Returns:
            The new version's :class:`Manifest`.

        Raises:
            RegistryError: unknown kind, a required artifact missing (nothing is registered).
            Any exception of ``write`` propagates after the temporary folder is removed.
        """
        if kind not in _KINDS:
            raise RegistryError(f"Unknown model kind {kind!r}.", unknown_fix("kinds", kind, _KINDS, "pathviz models list"))
        folder = self._model_dir(kind, name)
        folder.mkdir(parents=True, exist_ok=True)
        _remove_dead_writers(folder)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        # held while writing: tells a live writer's folder from a killed one's. Locked under another name and
        # then renamed, so no other writer ever sees the lock file before it is locked (and takes it for a dead one's)
        guard = open(tmp / (WRITING + ".new"), "w")
        fcntl.flock(guard, fcntl.LOCK_EX)
        os.rename(tmp / (WRITING + ".new"), tmp / WRITING)
        try:
            metrics = write(tmp) or {}
            missing = [f for f in _KINDS[kind].required_files if not (tmp / f).is_file()]
            if missing:
                raise RegistryError(f"The {kind} training job did not write {', '.join(missing)}; nothing was registered.",
                                    "check the job's log.")
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*"))
                     if p.is_file() and p.relative_to(tmp).as_posix() != WRITING}
            portable = _portable_paths(self.root)
            with self._lock(kind, name):
                version = f"v{len(self._version_dirs(kind, name)) + 1:04d}"
                while (folder / version).exists():
                    version = f"v{int(version[1:]) + 1:04d}"
                man = Manifest(kind=kind, name=name, version=version, created=datetime.now(timezone.utc).isoformat(
                    timespec="seconds"), code_version=code_version(), cohort=portable(cohort), data_digest=data_digest,
                    split_seed=split_seed, params=portable(dict(params or {})), metrics=portable(dict(metrics)),
                    parent=parent, status="ready", card=portable(dict(card or {})), files=files)
                (tmp / MANIFEST).write_text(json.dumps(man.to_dict(), indent=1, default=str))
                # the lock file stays until the folder is renamed into place, so a temporary folder of a
                # killed writer is always told from a live one by its lock (and removed at once by the next
                # writer), never only by its age; it is no artifact (not in the manifest) and goes right after
                os.rename(tmp, folder / version)
                (folder / version / WRITING).unlink(missing_ok=True)
            return man
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            guard.close()

    # -- read ---------------------------------------------------------------------------------
    def _version_dirs(self, kind: str, name: str) -> list[Path]:
        folder = self._model_dir(kind, name)
        return sorted(p for p in folder.glob("v[0-9]*") if (p / MANIFEST).is_file()) if folder.exists() else []

    def _read(self, path: Path) -> Manifest:
        try:
            return Manifest(**json.loads((path / MANIFEST).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise RegistryError(f"The manifest of {path} is unreadable ({exc}).",
                                "restore the version from a backup or delete its folder.", path / MANIFEST) from exc

    def versions(self, kind: str | None = None, name: str | None = None) -> list[Manifest]:
        """Manifests of every version (optionally of one kind and/or model), oldest first per model."""
        out = []
        kinds = [kind] if kind else sorted(p.name for p in self.root.glob("*") if p.is_dir()) if self.root.exists() else []
        for k in kinds:
            names = [name] if name else sorted(p.name for p in (self.root / k).glob("*") if p.is_dir()) \
                if (self.root / k).exists() else []
            for n in names:
                if not _NAME.match(n):
                    continue
                out += [self._read(p) for p in self._version_dirs(k, n)]
        return out

    def aliases(self, kind: str, name: str) -> dict[str, str]:
        """``{alias: version}`` of one model."""
        path = self._model_dir(kind, name) / "aliases.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def alias_history(self, kind: str, name: str) -> list[dict]:
        """Every alias move of one model, oldest first: ``{time, alias, version, previous, action}``."""
        path = self._model_dir(kind, name) / "aliases.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def get(self, ref: str) -> Manifest:
        """Resolve ``kind/name@version``, ``kind/name@alias`` or ``kind/name`` (the ``production``
        alias, else the newest version).

        Raises:
            RegistryError: unknown model, version or alias (closest names suggested).
        """
        kind, name, tag = parse_ref(ref)
        dirs = self._version_dirs(kind, name)
        if not dirs:
            known = [f"{m.kind}/{m.name}" for m in self.versions()]
            raise RegistryError(f"No model {kind}/{name} in the registry.", unknown_fix("models", f"{kind}/{name}", known,
                                                                                       "pathviz models list"))
        versions = [p.name for p in dirs]
        if tag is None:
            tag = self.aliases(kind, name).get(DEFAULT_ALIAS, versions[-1])
        elif tag not in versions:
            al = self.aliases(kind, name)
            if tag not in al:
                raise RegistryError(f"{kind}/{name} has no version or alias {tag!r}.",
                                    unknown_fix("versions", tag, versions + list(al), f"pathviz models show {kind}/{name}"))
            tag = al[tag]
        return self._read(self._model_dir(kind, name) / tag)

    def chosen(self, kind: str) -> dict[str, Manifest]:
        """The version the product uses for every model of ``kind`` (its ``production`` alias,
        else its newest version): ``{name: Manifest}``. Pages, the CLI and the viewer resolve
        models through this (or :meth:`get`), never by reading model folders."""
        names = sorted({m.name for m in self.versions(kind)}) if (self.root / kind).exists() else []
        out = {}
        for n in names:
            try:
                out[n] = self.get(f"{kind}/{n}")
            except RegistryError:
                continue  # e.g. an alias pointing at a deleted version: the pages skip this model; the admin page shows it
        return out

    def path(self, ref: str, verify: bool = True) -> Path:
        """The folder of a resolved version, its files checked against the manifest first."""
        man = self.get(ref)
        if verify:
            self.verify(man)
        return self._model_dir(man.kind, man.name) / man.version

    def verify(self, man: Manifest) -> None:
        """Check every artifact of a version against its recorded SHA-256.

        Raises:
            RegistryError: a file missing or changed since the version was written (names the file).
        """
        folder = self._model_dir(man.kind, man.name) / man.version
        for rel, digest in man.files.items():
            p = folder / rel
            if not p.is_file():
                raise RegistryError(f"{man.ref}: file {rel} is missing.", "restore it from a backup or retrain.", p)
            if sha256_file(p) != digest:
                raise RegistryError(f"{man.ref}: file {rel} was changed after the version was written (SHA-256 mismatch).",
                                    "restore it from a backup or retrain; versions are immutable.", p)

    # -- aliases ------------------------------------------------------------------------------
    def _move_alias(self, kind: str, name: str, alias: str, version: str | None, action: str, by: str = "") -> dict:
        folder = self._model_dir(kind, name)
        al = self.aliases(kind, name)
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "alias": alias, "version": version,
                 "previous": al.get(alias), "action": action, "by": by}
        if version is None:
            al.pop(alias, None)
        else:
            al[alias] = version
        tmp = folder / f".aliases-{os.getpid()}.json"
        tmp.write_text(json.dumps(al, indent=1))
        os.replace(tmp, folder / "aliases.json")
        with open(folder / "aliases.log", "a") as f:
            f.write(json.dumps(entry) + "\n")
        return entry

    def promote(self, ref: str, alias: str = DEFAULT_ALIAS, *, actor) -> dict:
        """Point ``alias`` of a model at the version ``ref`` names (``kind/name@version``); the
        move is recorded in the alias history and the audit log. Returns the history entry.

        Args:
            actor: who promotes (:class:`~pathviz.auth.policy.Actor`; needs ``models.manage``).

        Raises:
            PermissionDeniedError: the actor may not manage models.
            RegistryError: no explicit version in ``ref``, unknown version, invalid alias, or a
                tampered version (promotion verifies the files).
        """
        from pathviz.auth.policy import require

        require(actor, "models.manage", "promote model versions")
        kind, name, tag = parse_ref(ref)
        if not _NAME.match(alias) or alias.startswith("v") and alias[1:].isdigit():
            raise RegistryError(f"Invalid alias {alias!r}.", "use a word such as production or candidate.")
        if tag is None:
            raise RegistryError(f"{ref!r} names no version.", f"write {kind}/{name}@v0001 (see pathviz models show {kind}/{name}).")
        man = self.get(ref)
        self.verify(man)
        with self._lock(kind, name):
            entry = self._move_alias(kind, name, alias, man.version, "promote", actor.username)
        self._audit(actor, "model.promoted", kind, name, entry)
        return entry

    def _audit(self, actor, action: str, kind: str, name: str, entry: dict) -> None:
        if self.audit is not None:
            self.audit.record(actor, action, "model", f"{kind}/{name}",
                              {"alias": entry["alias"], "version": entry["version"], "previous": entry["previous"]})

    def rollback(self, kind_name: str, alias: str = DEFAULT_ALIAS, *, actor) -> dict:
        """Move ``alias`` back to the version it pointed at before its latest promotion (the
        history is kept: a rollback is itself an entry, also in the audit log). Returns the
        history entry.

        Args:
            actor: who rolls back (needs ``models.manage``).

        Raises:
            PermissionDeniedError: the actor may not manage models.
            RegistryError: the alias has no earlier holder to return to.
        """
        from pathviz.auth.policy import require

        require(actor, "models.manage", "roll back model versions")
        kind, name, _ = parse_ref(kind_name)
        with self._lock(kind, name):
            current = self.aliases(kind, name).get(alias)
            moves = [e for e in self.alias_history(kind, name) if e["alias"] == alias and e["action"] == "promote"]
            # the holder before the promotion that made the current holder current (rollbacks are not undone by rollbacks)
            target = None
            for e in reversed(moves):
                if e["version"] == current:
                    target = e["previous"]
                    break
            if current is None or target is None:
                raise RegistryError(f"{kind}/{name}: alias {alias!r} has no earlier version to roll back to.",
                                    f"promote a version instead (pathviz models promote {kind}/{name}@vNNNN).")
            entry = self._move_alias(kind, name, alias, target, "rollback", actor.username)
        self._audit(actor, "model.rolled_back", kind, name, entry)
        return entry


#: Which pages use the chosen version of each kind (shown on the admin page).
USED_BY = {
    "coxpasnet": ("Pathways (rankings, node KM, heatmap)", "Patient risk (Cox-PASNet strata)"),
    "pagenet": ("Slide viewer (survival layers)", "Patient risk (PAGE-Net strata)", "Pathways (PAGE-Net ranking)"),
    "attention_mil": ("Slide viewer (attention layers)",),
    "crossattn": ("Slide viewer (cross-attention layers: own and median RNA query)",),
}


#: Model kinds whose versions write viewer layers (``metrics["layer_tag"]``).
LAYER_KINDS = ("pagenet", "attention_mil", "crossattn")


def chosen_layer_refs(registry: "ModelRegistry", kind: str | None = None) -> dict[str, str]:
    """``{layer tag: version reference}`` of the chosen version of every ``kind`` model (every
    kind of :data:`LAYER_KINDS` when None; the tag is ``metrics["layer_tag"]``, part of the names
    of the layers that version wrote)."""
    kinds = LAYER_KINDS if kind is None else (kind,)
    return {str(m.metrics["layer_tag"]): m.ref for k in kinds for m in registry.chosen(k).values()
            if m.metrics.get("layer_tag")}


def chosen_layer_tags(registry: "ModelRegistry", kind: str | None = None) -> set[str]:
    """Layer tags of the chosen version of every ``kind`` model: the viewer shows only model layers
    carrying one of them (:meth:`pathviz.store.workspace.Workspace.layer_names`)."""
    return set(chosen_layer_refs(registry, kind))


def _portable_paths(root: Path) -> Callable:
    """A function that rewrites every string in a JSON-like value so it names no absolute path of
    this machine: the registry folder and its workspace (when the registry is ``<home>/models``)
    become relative names, the user's home directory ``~``. Manifests travel with their version
    (backups, exports, another server), so they carry names, not this machine's layout."""
    prefixes = []
    for base, repl in ((Path(root), ""), (Path(root).parent if Path(root).name == "models" else None, ""),
                       (Path.home(), "~/")):
        if base is None:
            continue
        for form in {str(base), str(base.resolve())}:
            if form not in ("", "/"):
                prefixes.append((form.rstrip("/"), repl))
    prefixes.sort(key=lambda p: -len(p[0]))  # the longest (most specific) prefix first
    patterns = [(re.compile(re.escape(prefix) + r"(/|(?![\w.-]))"), repl) for prefix, repl in prefixes]

    def fix(value):
        if isinstance(value, str):
            for pattern, repl in patterns:
                value = pattern.sub(lambda m, r=repl: r if m.group(1) else (r.rstrip("/") or "."), value)
            return value
        if isinstance(value, dict):
            return {fix(k) if isinstance(k, str) else k: fix(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [fix(v) for v in value]
        return value

    return fix


def _remove_dead_writers(folder: Path, grace_s: float = 60.0) -> None:
    """Remove temporary version folders whose writer died (its lock on ``.writing`` is free);
    folders of live writers, and ones younger than ``grace_s`` without a lock file, are kept."""
    for stale in folder.glob(".tmp-*"):
        lock = stale / WRITING
        try:
            with open(lock, "r") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer
        except FileNotFoundError:
            try:
                if time.time() - stale.stat().st_mtime < grace_s:
                    continue  # being created, or renaming right now
            except FileNotFoundError:
                continue
        shutil.rmtree(stale, ignore_errors=True)


def load_torch_weights(path: str | Path, device: str = "cpu"):
    """A state dict from a registry file, never unpickling code (``torch.load(weights_only=True)``).

    Raises:
        RegistryError: the file is missing or holds anything but tensors and plain containers
            (e.g. a pickled object).
    """
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError as exc:
        raise RegistryError(f"Weights file {path} is missing.", "restore it or retrain the model.", path) from exc
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError for unsafe or corrupt payloads
        raise RegistryError(f"Weights file {path} is not a plain state dict ({type(exc).__name__}); it was not loaded.",
                            "use a file written by PathViz (torch.save(state_dict)) or a safetensors file.", path) from exc
