"""Graph files for the command line: PyG ``.pt`` and plain edge lists."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write

__all__ = ["read_graph", "write_graph"]


def read_graph(path: str | os.PathLike[str], *, features: str | os.PathLike[str] | None = None):
    """Read a graph: a PyG ``Data`` saved with ``torch.save`` (``.pt``) or an edge list.

    An edge list is a text file with one ``i j`` or ``i j w`` line per edge (``#``
    comments allowed); its features come from ``features`` (``.npy`` or text, (n, F)).
    Undirected edges may be listed once: both directions are added.

    Returns
    -------
    torch_geometric.data.Data
        ``x`` (n, F), ``edge_index`` (2, E) and optional ``edge_attr`` (E,).
    """
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    if path.suffix == ".pt":
        try:
            data = torch.load(path, weights_only=False)
        except Exception as exc:
            raise InputError(path, f"cannot read as a torch file ({exc})") from None
        if not isinstance(data, Data) or data.x is None:
            raise InputError(path, "expected a torch_geometric Data object with x")
        return data
    try:
        table = np.loadtxt(path, comments="#", ndmin=2)
    except ValueError as exc:
        raise InputError(path, f"cannot parse edge list ({exc})") from None
    if table.shape[1] not in (2, 3) or (table[:, :2] != np.round(table[:, :2])).any():
        raise InputError(path, "edge list lines must be 'i j' or 'i j weight' with integer ids")
    if features is None:
        raise InputError(path, "an edge list needs --features (an .npy or text (n, F) matrix)")
    fpath = Path(features)
    if not fpath.is_file():
        raise InputError(fpath, "no such file")
    try:
        x = np.load(fpath) if fpath.suffix == ".npy" else np.loadtxt(fpath, ndmin=2)
    except ValueError as exc:
        raise InputError(fpath, f"cannot parse features ({exc})") from None
    x = np.asarray(x, dtype=np.float32)
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
