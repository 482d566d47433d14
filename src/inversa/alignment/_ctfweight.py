"""Per-particle 3-D CTF x exposure weights for scoring and averaging.

A particle cut from a tomogram (or reconstructed from its tilt series) measures
``P(k) = M(k) F(R^T k) + noise`` with ``M`` its 3-D CTF weight: the tilts' CTFs at the
particle's depth-corrected defocus, each with the exposure filter of its accumulated
dose, inserted as central slices (:func:`inversa.tomography.ctf3d_weight`). The binary
missing wedge is the special case of unit slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.alignment._volumes import fourier_frequencies
from inversa.core.errors import InputError
from inversa.tomography import TiltSeriesCTF, ctf3d_weight

__all__ = ["ParticleCTF", "ctf_weight_volume"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ParticleCTF:
    """Where each particle sits and which tilt series' CTF it carries.

    Attributes
    ----------
    series
        The tilt series' CTF metadata (one per tomogram).
    series_index
        ``(N,)`` index into ``series`` of each particle's tilt series.
    positions_A
        ``(N, 3)`` particle centres ``(x, y, z)`` in Angstrom about the tomogram centre
        (the depth offset of the defocus; RELION 5's ``rlnCenteredCoordinate*Angst``).
    pixel_size_A
        Angstrom per voxel of the particle boxes.
    phase_flipped
        The tomograms were reconstructed from phase-flipped images: weight by ``|CTF|``.
    dose_weighted
        Apply the exposure filter of each tilt's pre-exposure.
    ctf_weighted
        Apply the tilts' CTFs (``False`` with ``dose_weighted=False``: the binary wedge
        of the tilt range, exactly).
    """

    series: tuple[TiltSeriesCTF, ...]
    series_index: torch.Tensor
    positions_A: torch.Tensor
    pixel_size_A: float
    phase_flipped: bool = False
    dose_weighted: bool = True
    ctf_weighted: bool = True

    def __post_init__(self) -> None:
        series = tuple(self.series)
        if not series or not all(isinstance(s, TiltSeriesCTF) for s in series):
            raise InputError(None, "series must hold at least one TiltSeriesCTF")
        index = torch.as_tensor(self.series_index, dtype=torch.long).reshape(-1)
        pos = torch.as_tensor(self.positions_A, dtype=torch.float64)
        if pos.shape != (index.numel(), 3) or not bool(torch.isfinite(pos).all()):
            raise InputError(
                None, f"positions_A must be finite ({index.numel()}, 3); got {tuple(pos.shape)}"
            )
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(series)):
            raise InputError(None, "series_index points outside series")
        if not self.pixel_size_A > 0:
            raise InputError(None, f"pixel_size_A must be positive, got {self.pixel_size_A}")
        object.__setattr__(self, "series", series)
        object.__setattr__(self, "series_index", index)
        object.__setattr__(self, "positions_A", pos)

    def __len__(self) -> int:
        """Return the number of particles."""
        return self.series_index.numel()

    def subset(self, index: torch.Tensor | slice) -> ParticleCTF:
        """Return the particles selected by ``index`` (a slice, indices or a boolean mask)."""
        if isinstance(index, torch.Tensor):
            index = index.to("cpu")
        return ParticleCTF(
            series=self.series,
            series_index=self.series_index[index],
            positions_A=self.positions_A[index],
            pixel_size_A=self.pixel_size_A,
            phase_flipped=self.phase_flipped,
            dose_weighted=self.dose_weighted,
            ctf_weighted=self.ctf_weighted,
        )

    def weights(self, frequencies: torch.Tensor, *, rotations: torch.Tensor | None = None):
        """Evaluate every particle's weight at frequencies in cycles per voxel.

        Parameters
        ----------
        frequencies
            ``(..., 3)`` ``(k_x, k_y, k_z)`` cycles/voxel, in the particle's frame, or in
            the reference frame when ``rotations`` are given.
        rotations
            ``(N, 3, 3)``: evaluate particle ``i`` at ``R_i k`` (its weight brought into
            the reference frame of an aligned particle); ``None``: at ``k``.

        Returns
        -------
        torch.Tensor
            ``(N, ...)`` float64.
        """
        k = frequencies.to(torch.float64) / self.pixel_size_A
        out = []
        for i in range(len(self)):
            ki = k
            if rotations is not None:
                ki = k @ rotations[i].to(k).T
            out.append(
                ctf3d_weight(
                    ki,
                    self.series[int(self.series_index[i])],
                    position_A=self.positions_A[i],
                    phase_flipped=self.phase_flipped,
                    dose_weighted=self.dose_weighted,
                    ctf_weighted=self.ctf_weighted,
                )
            )
        if not out:
            return k.new_zeros(0, *k.shape[:-1])
        return torch.stack(out)

    def on_grid(
        self, shape: tuple[int, int, int], *, rotations: torch.Tensor | None = None, device=None
    ) -> torch.Tensor:
        """``(N, D, H, W)`` weights on the ``torch.fft.fftn`` grid of a box (not shifted).

        The weight is even (``M(-k) = M(k)``: every tilt's CTF and exposure filter are),
        so only the ``rfftn`` half is evaluated and the rest mirrored (on the Nyquist
        planes of an even box, where ``fftn`` holds ``-1/2`` for both signs, the entries
        take the mirrored value).
        """
        d, h, w = shape
        half = w // 2 + 1
        k = fourier_frequencies(shape, device=device, dtype=torch.float64)[..., :half, :]
        out = self.weights(k, rotations=rotations)  # (N, D, H, half)
        if half == w:
            return out
        cols = torch.arange(half, w, device=out.device)
        iz = (-torch.arange(d, device=out.device)) % d
        iy = (-torch.arange(h, device=out.device)) % h
        mirrored = out[:, iz][:, :, iy][..., (w - cols) % w]
        return torch.cat([out, mirrored], dim=-1)


def ctf_weight_volume(ctf: ParticleCTF, index: int, box: int) -> torch.Tensor:
    """One particle's 3-D weight on a centred ``(box, box, box)`` grid (for figures).

    Returns
    -------
    torch.Tensor
        ``(box, box, box)`` float64, zero frequency at ``box // 2`` (fftshifted).
    """
    w = ctf.subset(slice(index, index + 1)).on_grid((box, box, box))[0]
    return torch.fft.fftshift(w)
