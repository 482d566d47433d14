"""SeisLM: a self-supervised wav2vec2-style foundation model for 3-component seismograms.

Data (synthetic labelled local events, SeisBench datasets, ObsPy streams), the encoder
with its Gumbel product quantiser and masked-span contrastive pretraining, fine-tuned
per-sample phase picking and detection heads, and picking of ObsPy recordings into
``obspy.core.event.Pick`` objects (QuakeML / CSV). A tiny pretrained and fine-tuned model
ships with the package (`load_picker()`).
"""

from inversa.seislm._data import (
    augment,
    highpass,
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
from inversa.seislm._noise import (
    NOISE_SOURCES,
    REAL_EVENT_FILES,
    NoiseBank,
    build_noise_bank,
    load_noise_bank,
    noise_bank_path,
)
from inversa.seislm._onset import paired_onsets
from inversa.seislm._pick import (
    NAMESPACE,
    PickRun,
    annotate,
    evaluate_picker,
    find_peaks,
    group_events,
    onset_snr_db,
    pick_files,
    pick_probability,
    pick_waveform,
    roc_auc,
    stream_probabilities,
    write_picks,
)
from inversa.seislm._reference import aic_pick, real_event_records
from inversa.seislm._stream import (
    StationWaveform,
    read_waveforms,
    split_stations,
    stream_to_waveforms,
)
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
    "NAMESPACE",
    "NOISE_SOURCES",
    "REAL_EVENT_FILES",
    "FinetuneConfig",
    "GumbelQuantizer",
    "LabelledWaveforms",
    "NoiseBank",
    "PickRun",
    "PretrainConfig",
    "SeisLM",
    "SeisLMConfig",
    "SeisLMPicker",
    "StationWaveform",
    "SyntheticConfig",
    "aic_pick",
    "annotate",
    "augment",
    "build_noise_bank",
    "compute_mask",
    "evaluate_picker",
    "find_peaks",
    "finetune",
    "group_events",
    "grouped_conv_fft",
    "highpass",
    "load_encoder",
    "load_noise_bank",
    "load_picker",
    "make_shipped_model",
    "noise_bank_path",
    "normalize",
    "onset_snr_db",
    "paired_onsets",
    "phase_labels",
    "pick_files",
    "pick_probability",
    "pick_waveform",
    "predict",
    "pretrain",
    "pretraining_loss",
    "random_windows",
    "read_seisbench",
    "read_waveforms",
    "real_event_records",
    "roc_auc",
    "sample_negatives",
    "save_picker",
    "shipped_encoder_path",
    "shipped_model_path",
    "split_stations",
    "stream_probabilities",
    "stream_to_waveforms",
    "synthetic_events",
    "train_phasenet",
    "write_picks",
    "write_seisbench",
]
