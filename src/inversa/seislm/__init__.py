"""SeisLM: a self-supervised wav2vec2-style foundation model for 3-component seismograms.

Data (synthetic labelled local events, SeisBench datasets, ObsPy streams), the encoder
with its Gumbel product quantiser and masked-span contrastive pretraining, fine-tuned
per-sample phase picking and detection heads, and picking of ObsPy recordings into
``obspy.core.event.Pick`` objects (QuakeML / CSV). A tiny pretrained and fine-tuned model
ships with the package (`load_picker()`).
"""

from inversa.seislm._data import (
    augment,
    normalize,
    phase_labels,
    random_windows,
    read_seisbench,
    write_seisbench,
)
from inversa.seislm._model import (
    CONFIGS,
    GumbelQuantizer,
    SeisLM,
    SeisLMConfig,
    SeisLMPicker,
    compute_mask,
    grouped_conv_fft,
    pretraining_loss,
    sample_negatives,
)
from inversa.seislm._pick import (
    PickRun,
    annotate,
    evaluate_picker,
    find_peaks,
    pick_files,
    pick_waveform,
    roc_auc,
    write_picks,
)
from inversa.seislm._stream import StationWaveform, read_waveforms, stream_to_waveforms
from inversa.seislm._synthetic import LabelledWaveforms, SyntheticConfig, synthetic_events
from inversa.seislm._train import (
    FinetuneConfig,
    PretrainConfig,
    finetune,
    load_encoder,
    load_picker,
    make_shipped_model,
    predict,
    pretrain,
    save_picker,
    shipped_encoder_path,
    shipped_model_path,
    train_phasenet,
)

__all__ = [
    "CONFIGS",
    "FinetuneConfig",
    "GumbelQuantizer",
    "LabelledWaveforms",
    "PickRun",
    "PretrainConfig",
    "SeisLM",
    "SeisLMConfig",
    "SeisLMPicker",
    "StationWaveform",
    "SyntheticConfig",
    "annotate",
    "augment",
    "compute_mask",
    "evaluate_picker",
    "find_peaks",
    "finetune",
    "grouped_conv_fft",
    "load_encoder",
    "load_picker",
    "make_shipped_model",
    "normalize",
    "phase_labels",
    "pick_files",
    "pick_waveform",
    "predict",
    "pretrain",
    "pretraining_loss",
    "random_windows",
    "read_seisbench",
    "read_waveforms",
    "roc_auc",
    "sample_negatives",
    "save_picker",
    "shipped_encoder_path",
    "shipped_model_path",
    "stream_to_waveforms",
    "synthetic_events",
    "train_phasenet",
    "write_picks",
    "write_seisbench",
]
