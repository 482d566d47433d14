"""Loading a user's saved model for `separation_curve`, safely by default."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from inversa.core.errors import InputError

__all__ = ["load_model", "save_mlp"]

_MLP_KEYS = ("in_features", "classes", "width", "depth", "alpha", "dropout")


def save_mlp(path: str | os.PathLike[str], net: nn.Sequential, *, force: bool = False) -> None:
    """Save a `make_mlp` network as safetensors with its configuration (safe to load).

    Parameters
    ----------
    path
        Destination ``.safetensors`` file.
    net
        A network built by `make_mlp` (e.g. ``BatchedMLP.to_sequential(i)``).
    force
        Overwrite an existing file.
    """
    from inversa.core.training import save_weights

    lin = [m for m in net if isinstance(m, nn.Linear)]
    act = [m for m in net if isinstance(m, nn.LeakyReLU)]
    drop = [m for m in net if isinstance(m, nn.Dropout)]
    if not lin or not act or len(lin) != len(act) + 1:
        raise InputError(None, "save_mlp needs a network built by make_mlp")
    meta = {
        "architecture": "springblock.make_mlp",
        "in_features": lin[0].in_features,
        "classes": lin[-1].out_features,
        "width": lin[0].out_features,
        "depth": len(lin),
        "alpha": act[0].negative_slope,
        "dropout": drop[0].p if drop else 0.0,
    }
    save_weights(path, net.state_dict(), metadata=meta, force=force)


def load_model(path: str | os.PathLike[str], *, trust: bool = False) -> nn.Module:
    """Load a saved model whose layers forward hooks can see.

    Parameters
    ----------
    path
        A ``.safetensors`` file written by `save_mlp` (weights plus configuration; safe), or
        a whole module saved with ``torch.save(model, path)`` (needs ``trust``).
        TorchScript and torch.export files are refused: they inline their layers, so hooks
        cannot observe them.
    trust
        Allow unpickling a whole module (``torch.load(weights_only=False)``). UNSAFE: this
        runs any code named in the file, so use it only for files from a source you trust.
        Off by default: such files are then refused with a message, never executed.

    Returns
    -------
    torch.nn.Module
        The model on the CPU.

    Raises
    ------
    InputError
        Missing file, a state dict only (no architecture), a pickled module without
        ``trust``, TorchScript/torch.export files, or unreadable data.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "model file not found")
    if p.suffix == ".safetensors":
        from inversa.core.training import load_weights
        from inversa.springblock._mlp import make_mlp

        state, meta = load_weights(p)
        if not isinstance(meta, dict) or meta.get("architecture") != "springblock.make_mlp":
            raise InputError(p, "safetensors file without springblock.make_mlp configuration")
        missing = [k for k in _MLP_KEYS if k not in meta]
        if missing:
            raise InputError(p, f"configuration lacks {', '.join(missing)}")
        try:
            net = make_mlp(**{k: meta[k] for k in _MLP_KEYS})
            net.load_state_dict(state)
        except InputError as exc:
            raise InputError(p, f"invalid configuration ({exc.problem})") from None
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InputError(p, f"weights do not match the configuration ({exc})") from None
        return net
    inlined = (
        "torch.export / TorchScript files inline their layers, so forward hooks cannot see "
        "them; save the model with torch.save(model, path) and pass --trust"
    )
    if p.suffix == ".pt2":
        raise InputError(p, inlined)
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError(p, f"damaged zip/torch file ({exc})") from None
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise InputError(p, inlined)
    if trust:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise InputError(p, f"cannot load the file ({exc})") from None
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "GLOBAL " not in str(exc):  # torch names a refused class "GLOBAL module.name"
                raise InputError(p, "cannot load the file (damaged or not a torch file)") from None
            raise InputError(
                p,
                "the file holds a pickled object (e.g. a whole nn.Module): loading it runs code "
                "from the file; pass --trust (trust=True) only if you trust its source",
            ) from None
        except Exception as exc:
            raise InputError(p, f"cannot load the file ({exc})") from None
    if isinstance(obj, nn.Module):
        return obj
    raise InputError(
        p,
        "the file holds no model architecture (a state dict or other data); save the whole "
        "model with torch.save(model, path) (load with --trust) or a make_mlp network with "
        "save_mlp",
    )
