"""ICE-TIDE: joint tilt-series alignment and reconstruction with a neural field.

- :func:`fit_icetide` fits a hash-grid :class:`~inversa.core.fields.NeuralField` volume
  together with per-tilt shifts, in-plane rotations and B-spline local fields
  (:class:`TiltDeformation`) by rendering rays through the field (:func:`render_rays`),
  configured by :class:`IceTideConfig`; :func:`write_icetide` writes its outputs.
- Classical peers on the tomography core: :func:`align_xcorr` (IMOD-like cumulative
  cross-correlation with cosine stretching) and :func:`align_projmatch` (AreTomo-like
  projection matching).
- :func:`refine_rigid` refines each tilt's rotation and shift by Gauss-Newton against
  reference projections (the bench's oracle floor uses it with the true volume);
  :func:`polish_rigid` does so against a fit's own volume (the last stage of
  :func:`fit_icetide`, ``IceTideConfig.polish``, on by default).
- :func:`alignment_errors` scores a found alignment against the truth.
- With a CTF (:class:`inversa.tomography.TiltSeriesCTF`, e.g. from a ctffind or IMOD
  defocus file: :func:`read_ctf`), the fit renders detector patches filtered through it
  (:func:`filter_patches`, margin :func:`ctf_padding`); :func:`phase_flip_tilts` flips a
  stack as IMOD's ``ctfphaseflip`` does for the classical peers and the corrected WBP.
  Coarse to fine under a CTF (``IceTideConfig.ctf_lowpass``): an early phase fits single
  rays to the data Wiener-restored and low-passed below each tilt's first CTF zero
  (:func:`ctf_first_zero`, :func:`restore_lowpass`); ``IceTideConfig.init = "xcorr"``
  starts from :func:`align_xcorr`.

See ``docs/icetide.md``.
"""

from inversa.icetide._deformation import TiltDeformation, rigid_free, rigid_xf, xf_to_rigid
from inversa.icetide._files import (
    ICETIDE_OUTPUTS,
    icetide_paths,
    read_ctf,
    read_tilt_series,
    run_icetide,
    write_icetide,
)
from inversa.icetide._fit import (
    IceTideConfig,
    IceTideModel,
    IceTideResult,
    check_stack,
    corrected_stack,
    fit_icetide,
    level_weights,
    normalise_stack,
    phase_flip_tilts,
    reconstruct_corrected,
)
from inversa.icetide._peers import (
    align_projmatch,
    align_xcorr,
    alignment_errors,
    cross_correlation_shift,
    split_rigid,
)
from inversa.icetide._refine import polish_rigid, refine_rigid
from inversa.icetide._render import (
    ctf_first_zero,
    ctf_padding,
    filter_patches,
    ray_half_length,
    render_rays,
    restore_lowpass,
    volume_to_unit,
)

__all__ = [
    "ICETIDE_OUTPUTS",
    "IceTideConfig",
    "IceTideModel",
    "IceTideResult",
    "TiltDeformation",
    "align_projmatch",
    "align_xcorr",
    "alignment_errors",
    "check_stack",
    "corrected_stack",
    "cross_correlation_shift",
    "ctf_first_zero",
    "ctf_padding",
    "filter_patches",
    "fit_icetide",
    "icetide_paths",
    "level_weights",
    "normalise_stack",
    "phase_flip_tilts",
    "polish_rigid",
    "ray_half_length",
    "read_ctf",
    "read_tilt_series",
    "reconstruct_corrected",
    "refine_rigid",
    "render_rays",
    "restore_lowpass",
    "rigid_free",
    "rigid_xf",
    "run_icetide",
    "split_rigid",
    "volume_to_unit",
    "write_icetide",
    "xf_to_rigid",
]
