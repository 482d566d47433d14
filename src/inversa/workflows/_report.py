"""Figures and the HTML report: what people would rather look at than read."""

from __future__ import annotations

import base64
import html
import io as _io
from pathlib import Path

import torch

from inversa.core.io import atomic_write

__all__ = [
    "save_fsc_png",
    "save_histogram_png",
    "save_images_png",
    "save_slices_png",
    "write_html_report",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path, *, force: bool) -> None:
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())


def save_slices_png(
    volumes: dict[str, torch.Tensor], path: str | Path, *, force: bool = False
) -> Path:
    """Save central xy and xz slices of several volumes side by side.

    Parameters
    ----------
    volumes
        Titles mapped to ``(D, H, W)`` volumes of one shape.
    path
        PNG to write.
    force
        Overwrite an existing file.
    """
    plt = _pyplot()
    n = len(volumes)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 5.0), squeeze=False)
    for col, (title, vol) in enumerate(volumes.items()):
        v = vol.detach().cpu().float()
        d, h, _ = v.shape
        for row, (img, label) in enumerate(((v[d // 2], "xy"), (v[:, h // 2, :], "xz"))):
            lo, hi = torch.quantile(img.flatten(), torch.tensor([0.005, 0.995])).tolist()
            ax = axes[row, col]
            ax.imshow(img.numpy(), cmap="gray", vmin=lo, vmax=hi, origin="lower")
            ax.set_title(f"{title} ({label})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    _save_figure(fig, Path(path), force=force)
    plt.close(fig)
    return Path(path)


def save_images_png(
    images: dict[str, torch.Tensor], path: str | Path, *, force: bool = False
) -> Path:
    """Save 2-D images side by side (e.g. tilt images), each ``(H, W)``."""
    plt = _pyplot()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    for col, (title, img) in enumerate(images.items()):
        im = img.detach().cpu().float()
        lo, hi = torch.quantile(im.flatten(), torch.tensor([0.005, 0.995])).tolist()
        axes[0, col].imshow(im.numpy(), cmap="gray", vmin=lo, vmax=hi, origin="lower")
        axes[0, col].set_title(title, fontsize=9)
        axes[0, col].set_xticks([])
        axes[0, col].set_yticks([])
    fig.tight_layout()
    _save_figure(fig, Path(path), force=force)
    plt.close(fig)
    return Path(path)


def save_fsc_png(
    curves: dict[str, torch.Tensor],
    path: str | Path,
    *,
    pixel_size: float,
    ylabel: str = "FSC with ground truth",
    force: bool = False,
) -> Path:
    """Plot FSC curves against spatial frequency (1/Angstrom) with the 0.143 and 0.5 lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for label, fsc in curves.items():
        f = torch.arange(len(fsc), dtype=torch.float64) / (2 * (len(fsc) - 1) * pixel_size)
        ax.plot(f.numpy(), fsc.detach().cpu().double().numpy(), label=label)
    for level in (0.5, 0.143):
        ax.axhline(level, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.1, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, Path(path), force=force)
    plt.close(fig)
    return Path(path)


def save_histogram_png(
    values: torch.Tensor, path: str | Path, *, xlabel: str, force: bool = False
) -> Path:
    """Histogram of per-item values, e.g. angular errors ``(N,)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    v = values.detach().cpu().double().numpy()
    ax.hist(v, bins=min(30, max(5, len(v) // 2)), color="tab:blue")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("particles")
    fig.tight_layout()
    _save_figure(fig, Path(path), force=force)
    plt.close(fig)
    return Path(path)


def _data_uri(png: Path) -> str:
    """Encode a PNG as a ``data:`` URI: the page then needs no file beside it (mailable)."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


# Images and wide tables shrink or scroll inside the page instead of overflowing it.
_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.4}"
    "img{max-width:100%;height:auto;display:block}"
    ".table{overflow-x:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
    "p{overflow-wrap:anywhere}figure{margin:0}figcaption{color:#444;font-size:90%}"
)


def write_html_report(
    path: str | Path,
    *,
    title: str,
    sections: list[tuple[str, str | list[list[str]] | Path | tuple[Path, str]]],
    force: bool = False,
) -> Path:
    """Write a self-contained HTML page: figures are embedded as base64 ``data:`` URIs.

    Parameters
    ----------
    path
        The HTML file.
    title
        Page title.
    sections
        ``(heading, content)`` pairs; content is a paragraph (str), a table (list of rows,
        the first row the header), a PNG file (embedded as an image; a relative path is
        relative to the working folder, not to the page) or a ``(PNG, caption)`` pair.
    force
        Overwrite an existing file.
    """
    path = Path(path)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, tuple):  # a figure and its caption
            png, caption = content
            parts.append(
                f"<figure><img src='{_data_uri(png)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        elif isinstance(content, Path):
            parts.append(f"<img src='{_data_uri(content)}' alt='{html.escape(heading)}'>")
        elif isinstance(content, list):
            header, *rows = content
            parts.append(
                "<div class='table'><table><tr>"
                + "".join(f"<th>{html.escape(c)}</th>" for c in header)
                + "</tr>"
            )
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            parts.append("</table></div>")
        else:
            parts.append(f"<p>{html.escape(content)}</p>")
    parts.append("</body></html>\n")
    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
    return path
