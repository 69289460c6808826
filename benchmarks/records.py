"""The result files of the speed benchmarks, one frozen dataclass each: ``attention_<mode>.json``
(:class:`AttentionResult`) and ``model_<mode>.json`` (:class:`ModelResult`).

The benchmarks build these records and ``write`` them; :mod:`benchmarks.report` (and the tests)
``read`` them back, which checks every field and names the file and the field when one differs
(:func:`nmt_common.records.read_record`). Torch-free, so that the report needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List, Literal, Optional, Tuple

from nmt_common.records import RecordFile

__all__ = [
    "ATTENTION_PHASES", "Summary", "PeakMemory", "Machine",
    "ConfigTiming", "AttentionPhases", "AttentionPoint", "AttentionRunSettings", "AttentionResult",
    "ModelRunSettings", "CaseModel", "CaseBucket", "AttentionShare", "RoundRates", "VariantResult", "CaseResult",
    "ModelResult",
]


class _ResultFile(RecordFile):
    """A benchmark result file, indented by 2 as the harness has always written it."""

    indent = 2


# --- shared --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Statistics of ``n`` samples, in the unit of the field that holds it."""

    median: float
    min: float
    max: float
    q1: float
    q3: float
    n: int


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory of one call, above what was allocated before it (see :func:`benchmarks.common.peak_memory`)."""

    bytes: int
    method: Literal["cuda_max_memory_allocated", "torch_profiler_allocations", "ru_maxrss_delta"]


@dataclass(frozen=True)
class Machine:
    """What the numbers were measured on."""

    cpu_model: str
    logical_cpus: Optional[int]
    cpus_available: Optional[int]
    torch_threads: int
    torch_interop_threads: int
    load_average_at_start: Optional[List[float]]  # 1, 5 and 15 minutes
    python: str
    platform: str
    torch: str
    fairseq: str
    entmax: Optional[str]
    device: str
    gpu: Optional[str] = None  # CUDA only
    cuda: Optional[str] = None  # CUDA only
    # how sparsemax, 1.5-entmax and top-k ran on CPU (fairseq_plugins.cpu_kernels.status()); None in
    # records made before the C++ row kernels (PyTorch operators)
    cpu_normalizers: Optional[str] = None


# --- attention_<mode>.json -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigTiming:
    """One attention configuration in one phase at one point."""

    seconds: Summary  # seconds per call, over the round-robin samples
    calls_per_sample: int  # calls back to back in one timed sample
    # time / softmax_fused's time, paired by round (< 1: faster); None without softmax_fused
    time_vs_softmax_fused: Optional[Summary] = None
    peak_memory: Optional[PeakMemory] = None  # None when the mode measures no memory


@dataclass(frozen=True)
class AttentionPhases:
    """What the attention benchmark times, each a map configuration -> timing."""

    forward: Dict[str, ConfigTiming]  # training mode, autograd recording
    forward_backward: Dict[str, ConfigTiming]  # the same plus backward to the input and the parameters
    inference: Dict[str, ConfigTiming]  # eval mode under torch.inference_mode


ATTENTION_PHASES = tuple(field.name for field in fields(AttentionPhases))


@dataclass(frozen=True)
class AttentionPoint:
    """One (dtype, batch, heads, length) point: self-attention, so queries == keys."""

    dtype: str
    batch: int  # sentences
    heads: int
    keys: int  # tokens
    queries: int  # tokens
    embed_dim: int
    phases: AttentionPhases


@dataclass(frozen=True)
class AttentionRunSettings:
    """The mode's settings as run (:class:`benchmarks.attention.AttentionSettings`), dtypes and configurations."""

    points: List[Tuple[int, int, int]]  # (batch, heads, keys)
    embed_dim: int
    repeats: int  # round-robin samples per configuration and phase
    sample_seconds: float  # target duration of one timed sample
    warmup_calls: int
    memory: bool
    dtypes: List[str]
    configs: List[str]


@dataclass(frozen=True)
class AttentionResult(_ResultFile):
    """``attention_<mode>.json``."""

    benchmark: Literal["attention"]
    mode: str
    command: str
    settings: AttentionRunSettings
    reference: Literal["softmax_fused"]
    machine: Machine
    elapsed_seconds: float
    points: List[AttentionPoint]


# --- model_<mode>.json ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRunSettings:
    """The mode's settings as run (:class:`benchmarks.model.ModelSettings`, overridden by the options)."""

    dtype: str
    variants: List[str]  # softmax first: the reference
    rounds: int  # measured rounds per case
    warmup_rounds: int
    beam: int
    seed: int
    profile_seconds: float  # attention shares: passes until this much step time
    profile_max_passes: int
    attention_share_clock: Literal["process_time", "perf_counter"]
    decode_sentences: Optional[int]  # sentences of every decoding batch; None: the mode's batches


@dataclass(frozen=True)
class CaseModel:
    """The model of a case: ``<variant>_transformer_<size>`` with ``extra_args``."""

    label: str
    size: str
    extra_args: List[str]
    vocab: int  # words
    parameters: int  # of the softmax model


@dataclass(frozen=True)
class CaseBucket:
    """The sentence-length bucket of a case; lengths in tokens."""

    label: str
    train_batches: List[Tuple[int, int, int]]  # (sentences, source length, target length)
    decode_batches: List[Tuple[int, int]]  # (sentences, source length)
    decode_length: int  # every hypothesis decodes exactly this many tokens (+ EOS)
    train_target_tokens_per_round: int
    decode_sentences_per_round: int
    source_lengths: Tuple[int, int]  # (min, max) of the training sentences
    target_lengths: Tuple[int, int]  # (min, max) of the training sentences
    decode_source_lengths: Tuple[int, int]  # (min, max) of the sentences to translate


@dataclass(frozen=True)
class AttentionShare:
    """Share of step time spent in the attention modules (0 to 1), median over profiling passes."""

    train: float  # replay estimate
    decode: float  # timed by forward hooks


@dataclass(frozen=True)
class RoundRates:
    """One rate per measured round: training in target tokens per second, decoding in sentences per
    second; wall clock, and ``_cpu``: per second of the process's CPU time."""

    train: List[float]
    decode: List[float]
    train_cpu: List[float]
    decode_cpu: List[float]


@dataclass(frozen=True)
class VariantResult:
    """One attention variant in one case. Ratios are the variant's rate / softmax's, paired by round
    (> 1: faster than softmax)."""

    arch: str
    parameters: int
    train_tokens_per_second: Summary  # target tokens per wall-clock second
    decode_sentences_per_second: Summary
    train_ratio_to_softmax: Summary
    decode_ratio_to_softmax: Summary
    train_tokens_per_cpu_second: Summary  # per second of the process's CPU time
    decode_sentences_per_cpu_second: Summary
    train_cpu_ratio_to_softmax: Summary
    decode_cpu_ratio_to_softmax: Summary
    decode_generated_tokens: int  # tokens of the best hypotheses of one round, EOS included
    attention_share: AttentionShare
    samples: RoundRates


@dataclass(frozen=True)
class CaseResult:
    """One case: a model x a length bucket, every variant."""

    name: str  # <model label>/<bucket label>
    model: CaseModel
    bucket: CaseBucket
    elapsed_seconds: float
    variants: Dict[str, VariantResult]  # variant -> result, softmax first


@dataclass(frozen=True)
class ModelResult(_ResultFile):
    """``model_<mode>.json``."""

    benchmark: Literal["model"]
    mode: str
    command: str
    machine: Machine
    reference: Literal["softmax"]
    settings: ModelRunSettings
    cases: List[CaseResult]
    elapsed_seconds: float
