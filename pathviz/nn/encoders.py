"""Patch encoders, created by name from a registry (issue 14): patches ``uint8[n, P, P, 3]`` in,
features ``float32[n, dim]`` out.

Built in:

``resnet18`` / ``resnet50``
    torchvision's ResNets (He et al., CVPR 2016) with the classifier removed (global average pool
    output, 512 / 2048 features), ImageNet input normalisation.
``pagenet_cnn``
    PAGE-Net's patch CNN (:class:`pathviz.nn.pagenet.PatchCNN`, seed 000): the last pooling
    layer's 50 maps, globally averaged; its own input standardisation buffers.
``timm:<model>``
    any model of the ``timm`` library by name (``num_classes=0``: its pooled features), input
    size and normalisation from the model's ``pretrained_cfg``.

Weights come only from a local file (:func:`read_weights`): ``.safetensors``, or a torch state
dict read with ``torch.load(weights_only=True)`` (a file carrying a pickled object is refused),
e.g. ImageNet or a pathology foundation model a user already has. Without weights an encoder is
randomly initialised from a seed and says so (:attr:`PatchEncoder.notice`): its features are
random projections, to be trained from scratch or used as a weak baseline. No model hub is ever
contacted (timm's ``pretrained=False``).

Device: CUDA when present (:func:`pathviz.settings.torch_device`), else CPU; on CUDA the forward
pass runs in channels-last memory format under bfloat16/float16 autocast.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pathviz.errors import PathVizError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder reads and returns.

    Attributes:
        name: registry name (``resnet18``, ``timm:vit_small_patch16_224``...).
        dim: feature dimension.
        input_px: side (px) of the square input the encoder is given (patches are resized to it
            with antialiasing).
        mean, std: per-channel input normalisation of [0, 1] RGB (identity for ``pagenet_cnn``,
            which standardises inside the network).
        head_prefixes: state-dict key prefixes of a classifier head that weights files may carry
            and the encoder drops (``fc.`` for ResNets).
    """

    name: str
    dim: int
    input_px: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    head_prefixes: tuple[str, ...] = ()


Builder = Callable[[str], tuple[nn.Module, EncoderSpec]]
_BUILDERS: dict[str, Builder] = {}


def register_encoder(name: str, builder: Builder) -> None:
    """Register a builder ``builder(name) -> (module, spec)``; ``module(x)`` maps normalised
    ``float[n, 3, input_px, input_px]`` to ``float[n, dim]``. A name ending in ``:`` registers a
    family (``timm:`` takes any model name after the colon)."""
    _BUILDERS[name] = builder


def encoder_names() -> list[str]:
    """Registered encoder names (families end in ``:``, e.g. ``timm:``)."""
    return sorted(_BUILDERS)


def _resnet(name: str) -> tuple[nn.Module, EncoderSpec]:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, EncoderSpec(name, dim, 224, head_prefixes=("fc.",))


class _PatchCNNFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        from pathviz.nn.pagenet import PatchCNN

        self.cnn = PatchCNN(patch=64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn.feature_maps(x).mean(dim=(2, 3))


def _pagenet_cnn(name: str) -> tuple[nn.Module, EncoderSpec]:
    net = _PatchCNNFeatures()
    return net, EncoderSpec(name, net.cnn.n_maps, 64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), ("cnn.head.",))


def _timm(name: str) -> tuple[nn.Module, EncoderSpec]:
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is in requirements.txt
        raise PathVizError(f"Encoder {name!r} needs the timm library, which is not installed.",
                           "pip install -r requirements.txt (it pins timm).") from exc
    model = name.partition(":")[2]
    if not model:
        raise PathVizError("Encoder 'timm:' needs a model name after the colon.", "e.g. --encoder timm:resnet18.")
    try:
        net = timm.create_model(model, pretrained=False, num_classes=0)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise PathVizError(f"timm has no model {model!r} ({exc}).",
                           "pick a name from timm.list_models(), e.g. timm:vit_small_patch16_224.") from exc
    cfg = getattr(net, "pretrained_cfg", {}) or {}
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    mean = tuple(cfg.get("mean") or IMAGENET_MEAN)
    std = tuple(cfg.get("std") or IMAGENET_STD)
    return net, EncoderSpec(name, int(net.num_features), size, mean, std, ("head.", "fc.", "classifier."))


register_encoder("resnet18", _resnet)
register_encoder("resnet50", _resnet)
register_encoder("pagenet_cnn", _pagenet_cnn)
register_encoder("timm:", _timm)


def _builder(name: str) -> Builder:
    if name in _BUILDERS and not name.endswith(":"):
        return _BUILDERS[name]
    family = name.partition(":")[0] + ":"
    if ":" in name and family in _BUILDERS:
        return _BUILDERS[family]
    raise PathVizError(f"Unknown patch encoder {name!r}.",
                       f"choose one of {', '.join(n + ('<model>' if n.endswith(':') else '') for n in encoder_names())}.")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local weights file: ``.safetensors`` (safetensors), anything else with
    ``torch.load(weights_only=True)``. A checkpoint that nests the state dict under
    ``state_dict`` / ``model`` / ``teacher`` is unwrapped; ``module.`` / ``model.`` / ``backbone.``
    key prefixes are removed.

    Raises:
        PathVizError: the file is missing, unreadable, not a plain state dict (a pickled object is
            refused, never executed), or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise PathVizError(f"Weights file {path} does not exist.", "give the path of a .safetensors or .pt/.pth file.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise PathVizError(f"{path} is not a readable safetensors file ({exc}).",
                               "export the weights again (safetensors.torch.save_file(state_dict, path)).") from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError for unsafe or corrupt payloads
            raise PathVizError(f"Weights file {path} is not a plain state dict ({type(exc).__name__}); it was not loaded.",
                               "save model.state_dict() with torch.save, or use a safetensors file.") from exc
    for key in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise PathVizError(f"{path} holds no tensors (not a state dict).", "save model.state_dict(), not the model.")
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "model.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


class PatchEncoder:
    """A patch encoder ready to use: ``encode(patches) -> float32[n, dim]``.

    Attributes:
        spec: the :class:`EncoderSpec`.
        module: the torch module (eval mode, on ``device``).
        weights_sha256: SHA-256 of the weights file, or None when randomly initialised.
        init_seed: the seed of a random initialisation (None with weights).
        notice: one line for pages, logs and model cards about where the weights came from.
        device: ``"cuda"`` or ``"cpu"``.
    """

    def __init__(self, module: nn.Module, spec: EncoderSpec, weights_sha256: str | None, init_seed: int | None,
                 device: str):
        self.module, self.spec, self.weights_sha256, self.init_seed, self.device = module, spec, weights_sha256, init_seed, device
        self.notice = (f"{spec.name}: weights from a local file (SHA-256 {weights_sha256[:12]}...)" if weights_sha256 else
                       f"{spec.name}: no weights file given, so the encoder is randomly initialised (seed {init_seed}) "
                       "and its features are random projections; give --weights PATH (ImageNet or a pathology "
                       "foundation model you have) for pre-trained features")

    def version(self, stain_normalised: bool) -> str:
        """Feature version ``<12 hex>``: a hash of the encoder name, its weights (SHA-256 or
        random seed), input size and normalisation, and whether patches are stain-normalised
        first. Two extractions with the same version give the same features."""
        key = {"name": self.spec.name, "weights": self.weights_sha256 or f"random:{self.init_seed}",
               "input_px": self.spec.input_px, "mean": self.spec.mean, "std": self.spec.std,
               "stain": bool(stain_normalised), "torch": torch.__version__.split("+")[0]}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> dict:
        """JSON-ready record for manifests and model cards."""
        return {"encoder": self.spec.name, "dim": self.spec.dim, "input_px": self.spec.input_px,
                "weights_sha256": self.weights_sha256, "init_seed": self.init_seed, "notice": self.notice}

    @torch.no_grad()
    def encode(self, patches: np.ndarray, batch: int = 64) -> np.ndarray:
        """Features of ``uint8[n, P, P, 3]`` RGB patches: ``float32[n, dim]``.

        Patches are scaled to [0, 1], resized to ``spec.input_px`` (bilinear with antialiasing),
        normalised by ``spec.mean`` / ``spec.std`` and encoded ``batch`` at a time.

        Raises:
            PathVizError: ``patches`` is not ``uint8[n, P, P, 3]``.
        """
        patches = np.asarray(patches)
        if patches.ndim != 4 or patches.shape[-1] != 3 or patches.dtype != np.uint8:
            raise PathVizError(f"Patches must be uint8[n, P, P, 3]; got {patches.dtype}{list(patches.shape)}.",
                               "pass RGB patches as read from the slide.")
        cuda = self.device == "cuda"
        mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1)
        out = np.empty((len(patches), self.spec.dim), np.float32)
        for i in range(0, len(patches), batch):
            x = torch.from_numpy(np.ascontiguousarray(patches[i:i + batch]))
            if cuda:
                x = x.pin_memory().to(self.device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            if x.shape[-1] != self.spec.input_px:
                x = nn.functional.interpolate(x, size=(self.spec.input_px, self.spec.input_px), mode="bilinear",
                                              antialias=True, align_corners=False)
            x = (x - mean) / std
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                with torch.autocast("cuda", dtype=dtype):
                    y = self.module(x)
            else:
                y = self.module(x)
            out[i:i + len(x)] = y.float().reshape(len(x), -1).cpu().numpy()
        return out


def build_encoder(name: str, weights: str | Path | None = None, device: str | None = None, seed: int = 0,
                  input_px: int | None = None) -> PatchEncoder:
    """The encoder ``name`` (:func:`encoder_names`), with weights from a local file or randomly
    initialised from ``seed``.

    Args:
        weights: ``.safetensors`` or torch state-dict file (:func:`read_weights`); None = random init.
        device: ``"cuda"`` / ``"cpu"``; None = CUDA when present (:func:`pathviz.settings.torch_device`).
        input_px: feed patches at this side instead of the encoder's own (fully convolutional
            encoders with global pooling only, e.g. ResNets at 128 px for speed on CPU).

    Raises:
        PathVizError: unknown encoder; unreadable or unsafe weights file; weights that do not fit
            the encoder (missing or mis-shaped parameters, named).
    """
    from pathviz.settings import torch_device

    builder = _builder(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module, spec = builder(name)
    sha = None
    if weights:
        state = read_weights(weights)
        own = module.state_dict()
        if all(k.startswith("cnn.") for k in own) and not any(k.startswith("cnn.") for k in state):  # PAGE-Net's cnn.pt
            state = {f"cnn.{k}": v for k, v in state.items()}
        # a classifier head the encoder does not have (ImageNet's fc) is dropped; anything else must fit
        state = {k: v for k, v in state.items() if k in own or not k.startswith(spec.head_prefixes)}
        bad_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        missing = [k for k in own if k not in state and not k.startswith(spec.head_prefixes)]
        unexpected = [k for k in state if k not in own]
        if bad_shape or missing or unexpected:
            detail = (f"{len(missing)} parameters missing (e.g. {', '.join(missing[:3])})" if missing else
                      f"{len(unexpected)} parameters it does not have (e.g. {', '.join(unexpected[:3])})" if unexpected else
                      f"{len(bad_shape)} with another shape (e.g. {bad_shape[0]}: file {tuple(state[bad_shape[0]].shape)}, "
                      f"encoder {tuple(own[bad_shape[0]].shape)})")
            raise PathVizError(f"Weights file {weights} does not fit encoder {name!r}: {detail}.",
                               f"use weights saved from a {name} model (a state dict of the same architecture).")
        module.load_state_dict(state, strict=False)  # every non-head parameter is present (checked above)
        sha = sha256_of(weights)
    if input_px and input_px != spec.input_px:
        if name.startswith("timm:") or name == "pagenet_cnn":
            raise PathVizError(f"Encoder {name!r} reads {spec.input_px} px patches only.", "leave input_px unset.")
        spec = replace(spec, input_px=int(input_px))
    dev = device or torch_device()
    module = module.to(dev).eval()
    return PatchEncoder(module, spec, sha, None if sha else seed, dev)
