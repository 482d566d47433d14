"""Graph files for the command line: PyG ``.pt`` (loaded safely) and plain edge lists."""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write

__all__ = ["read_graph", "write_graph"]


def _pyg_safe_globals() -> list[type]:
    """PyG classes a ``Data`` pickle names, beyond those PyG itself allowlists."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage]


def _load_pyg(path: Path):
    """Load a PyG ``Data`` with ``weights_only=True``: tensors and allowlisted classes only.

    Unpickling a user's file with ``weights_only=False`` would run any code it names;
    here a file naming anything else is refused before it can run.
    """
    from torch_geometric.data import Data

    try:
        with torch.serialization.safe_globals(_pyg_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the refused global as "GLOBAL module.name" (wording varies by case).
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:
            raise InputError(path, "cannot read as a torch file (damaged or not a .pt)") from None
        raise InputError(
            path,
            f"refusing to load {found.group(1)}: only a torch_geometric Data object is read "
            "from .pt files, because unpickling anything else can run code; save the graph "
            "as an edge list",
        ) from None
    except Exception as exc:
        raise InputError(path, f"cannot read as a torch file ({exc})") from None
    if not isinstance(data, Data) or not isinstance(data.x, torch.Tensor):
        raise InputError(path, "expected a torch_geometric Data object with x")
    ei = data.edge_index
    n = data.x.shape[0] if data.x.dim() == 2 else -1
    if n < 0 or not torch.is_floating_point(data.x) or not bool(torch.isfinite(data.x).all()):
        raise InputError(path, "x must be a finite (n, F) floating-point matrix")
    if (
        not isinstance(ei, torch.Tensor)
        or ei.dtype != torch.long
        or ei.dim() != 2
        or ei.shape[0] != 2
        or (ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n))
    ):
        raise InputError(path, f"edge_index must be (2, E) int64 node ids in [0, {n - 1}]")
    return data


def _load_features(fpath: Path) -> np.ndarray:
    if not fpath.is_file():
        raise InputError(fpath, "file not found")
    try:
        if fpath.suffix == ".npy":
            x = np.load(fpath, allow_pickle=False)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # empty file: checked below
                x = np.loadtxt(fpath, ndmin=2)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(fpath, f"cannot parse features ({exc})") from None
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[0] == 0:
        raise InputError(fpath, "features must be a non-empty (n, F) matrix")
    if x.dtype.kind not in "biuf" or not np.isfinite(x).all():
        raise InputError(fpath, "features must be finite real numbers")
    return np.asarray(x, dtype=np.float32)


def read_graph(path: str | os.PathLike[str], *, features: str | os.PathLike[str] | None = None):
    """Read a graph: a PyG ``Data`` saved with ``torch.save`` (``.pt``) or an edge list.

    A ``.pt`` file is loaded with ``torch.load(weights_only=True)`` and only the PyG data
    classes allowlisted: a file that names any other Python object (which unpickling
    would run) is refused. An edge list is a text file with one ``i j`` or ``i j w`` line
    per edge (``#`` comments allowed); its features come from ``features`` (``.npy`` or
    text, (n, F)). Undirected edges may be listed once: both directions are added.

    Returns
    -------
    torch_geometric.data.Data
        ``x`` (n, F), ``edge_index`` (2, E) and optional ``edge_attr`` (E,).

    Raises
    ------
    InputError
        A missing or malformed file, a ``.pt`` file holding anything but a PyG ``Data``,
        node ids outside the feature rows, or non-finite values.
    """
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.suffix == ".pt":
        return _load_pyg(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # empty file: checked below
            table = np.loadtxt(path, comments="#", ndmin=2)
    except (ValueError, OSError) as exc:
        raise InputError(path, f"cannot parse edge list ({exc})") from None
    if table.shape[0] == 0:
        raise InputError(path, "edge list holds no edges")
    if table.shape[1] not in (2, 3) or (table[:, :2] != np.round(table[:, :2])).any():
        raise InputError(path, "edge list lines must be 'i j' or 'i j weight' with integer ids")
    if not np.isfinite(table).all():
        raise InputError(path, "edge list holds NaN or infinite values")
    if features is None:
        raise InputError(path, "an edge list needs --features (an .npy or text (n, F) matrix)")
    x = _load_features(Path(features))
    if np.abs(table[:, :2]).max() >= x.shape[0]:
        raise InputError(path, f"node ids must lie in [0, {x.shape[0] - 1}] (rows of features)")
    ei = torch.from_numpy(table[:, :2].T.astype(np.int64))
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= x.shape[0]):
        raise InputError(path, f"node ids must lie in [0, {x.shape[0] - 1}] (rows of features)")
    w = torch.from_numpy(table[:, 2]) if table.shape[1] == 3 else None
    ei, w = to_undirected(ei, w, num_nodes=x.shape[0], reduce="max")
    return Data(x=torch.from_numpy(x), edge_index=ei, edge_attr=w)


def write_graph(data, path: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Write a graph as ``.pt`` (the whole ``Data``) or as an edge list plus ``.x.npy``.

    Returns
    -------
    list of Path
        The files written.
    """
    path = Path(path)
    if path.suffix == ".pt":
        with atomic_write(path, force=force) as tmp:
            torch.save(data, tmp)
        return [path]
    weight = getattr(data, "edge_attr", None)
    ei = data.edge_index.cpu().numpy()
    cols = [ei[0], ei[1]]
    if weight is not None and weight.dim() == 1:
        cols.append(weight.detach().cpu().double().numpy())
    table = np.stack(cols, axis=1)
    xpath = path.with_name(path.name + ".x.npy")
    with atomic_write(path, force=force) as tmp:
        fmt = ["%d", "%d"] + (["%.9g"] if len(cols) == 3 else [])
        np.savetxt(tmp, table, fmt=fmt, header="source target" + (" weight" * (len(cols) == 3)))
    with atomic_write(xpath, force=force) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, data.x.detach().cpu().numpy())
    return [path, xpath]
