"""The SeisLM encoder (wav2vec2 for 3-component waveforms), its quantiser and its losses."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inversa.core.errors import InputError

__all__ = [
    "CONFIGS",
    "GumbelQuantizer",
    "SeisLM",
    "SeisLMConfig",
    "SeisLMPicker",
    "compute_mask",
    "grouped_conv_fft",
    "pretraining_loss",
    "sample_negatives",
]


@dataclass(frozen=True, kw_only=True)
class SeisLMConfig:
    """Architecture and pretraining hyper-parameters (defaults: the paper's base model).

    Attributes
    ----------
    conv_channels, conv_layers, conv_kernel, conv_stride
        Feature encoder: ``conv_layers`` 1-D convolutions (3 input components).
    hidden, layers, heads, ffn
        Transformer width, depth, attention heads and feed-forward width.
    pos_kernel, pos_groups
        Convolutional positional embedding (grouped convolution over frames).
    groups, entries, codevector_dim, proj_dim
        Gumbel product quantiser: ``groups`` codebooks of ``entries`` vectors, concatenated
        to ``codevector_dim``; contrastive space of ``proj_dim``.
    mask_prob, mask_span
        Fraction of frames that start a masked span, and the span length.
    negatives, temperature, diversity_weight
        Contrastive negatives per masked frame, softmax temperature, diversity weight.
    gumbel_start, gumbel_end, gumbel_decay
        Gumbel temperature ``max(end, start * decay**step)``.
    dropout
        Dropout in the transformer and on the projected features.
    highpass_hz
        Corner of the causal 2-pole Butterworth high-pass applied to every record before
        the model, in training and in picking (`highpass`); ``0``: none. It removes the
        microseism that can dwarf a local event on a broadband sensor.
    picker_subframes
        Outputs per frame of the picking head (`SeisLMPicker`): ``1`` interpolates frame
        logits to the samples (the paper); the stride of the conv encoder gives one output
        per sample (sub-frame resolution on a coarse encoder).
    """

    conv_channels: int = 256
    conv_layers: int = 2
    conv_kernel: int = 3
    conv_stride: int = 2
    hidden: int = 240
    layers: int = 6
    heads: int = 12
    ffn: int = 3072
    pos_kernel: int = 128
    pos_groups: int = 16
    groups: int = 2
    entries: int = 320
    codevector_dim: int = 256
    proj_dim: int = 256
    mask_prob: float = 0.65
    mask_span: int = 10
    negatives: int = 100
    temperature: float = 0.1
    diversity_weight: float = 0.1
    gumbel_start: float = 2.0
    gumbel_end: float = 0.5
    gumbel_decay: float = 0.999995
    dropout: float = 0.1
    picker_subframes: int = 1
    highpass_hz: float = 0.0

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise InputError(None, "layers must be at least 1")
        if self.hidden % self.heads or self.hidden % self.pos_groups:
            raise InputError(None, "hidden must be divisible by heads and pos_groups")
        if self.codevector_dim % self.groups:
            raise InputError(None, "codevector_dim must be divisible by groups")
        if self.picker_subframes < 1:
            raise InputError(None, "picker_subframes must be at least 1")

    def to_dict(self) -> dict:
        """Plain-dict form (stored in weight files)."""
        return asdict(self)

    def gumbel_temperature(self, step: int) -> float:
        """Gumbel-softmax temperature at optimiser step ``step``."""
        return max(self.gumbel_end, self.gumbel_start * self.gumbel_decay**step)

    def frames(self, samples: int) -> int:
        """Return the number of encoder frames for a window of ``samples``."""
        n = samples
        for _ in range(self.conv_layers):
            n = (n - self.conv_kernel) // self.conv_stride + 1
        return n


CONFIGS: dict[str, SeisLMConfig] = {
    "base": SeisLMConfig(),
    # 3 conv layers (12.5 frames/s, 80 ms) halve the frames of a pretraining step; the
    # picking head puts 8 outputs on each frame, so picks keep one-sample resolution.
    "tiny": SeisLMConfig(
        conv_layers=3,
        mask_span=5,
        picker_subframes=8,
        highpass_hz=1.0,
        conv_channels=64,
        hidden=64,
        layers=2,
        heads=2,
        ffn=256,
        pos_kernel=32,
        pos_groups=8,
        codevector_dim=64,
        proj_dim=64,
        gumbel_decay=0.998,
    ),
}


class _GumbelQuantize(torch.autograd.Function):
    """Training-mode quantiser from logits, with a hand-written backward.

    Forward: ``soft = softmax((logits + gumbel(u)) / tau)``; codes are the codevectors of
    ``argmax(soft)`` with the straight-through gradient of ``(hard - soft.detach() + soft)
    @ book``; the perplexity is that of ``softmax(logits)`` averaged over the frames. The
    backward is the one autograd derives from those formulas, in fewer passes over the
    ``(n, groups, entries)`` tensors (the quantiser was a fifth of a tiny-config step):
    the gradient to the soft assignments is one block-diagonal matrix product instead of a
    batched one through transposed copies, the lookup replaces the dense one-hot products,
    and both softmax backwards use PyTorch's fused kernel.
    """

    @staticmethod
    def forward(
        ctx, logits: torch.Tensor, book: torch.Tensor, u: torch.Tensor, tau: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # logits, u: (n, g, v) (u is overwritten); book: (g, v, d)
        groups = torch.arange(book.shape[0], device=book.device)
        # (logits + gumbel) / tau with gumbel = -log(-log(u)), in place (bit for bit the same)
        # as (log(-log(u)) - logits) / -tau
        y = u.clamp_(1e-10, 1.0 - 1e-7).log_().neg_().log_().sub_(logits).div_(-tau)
        soft = torch.softmax(y, dim=-1)
        index = soft.argmax(-1)  # (n, g)
        codes = book[groups, index]  # (n, g, d)
        p = torch.softmax(logits.float(), dim=-1)
        avg = p.mean(0)
        entropy = -(avg * torch.log(avg + 1e-7)).sum(-1)  # (g,)
        perplexity = torch.exp(entropy).sum()
        ctx.save_for_backward(soft, p, book, index, avg, entropy)
        ctx.tau = tau
        ctx.mark_non_differentiable(index)
        return codes, perplexity, index

    @staticmethod
    def backward(
        ctx, grad_codes: torch.Tensor, grad_perplexity: torch.Tensor, _: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        soft, p, book, index, avg, entropy = ctx.saved_tensors
        n, g, v = soft.shape
        # straight-through: d soft[n, g, :] = book[g] @ grad_codes[n, g]
        blocks = torch.block_diag(*book.transpose(1, 2))  # (g * d, g * v)
        grad_soft = (grad_codes.reshape(n, -1) @ blocks).view(n, g, v)
        # softmax backward s * (g - <g, s>) in one fused pass (the kernel autograd itself uses)
        grad = torch._softmax_backward_data(grad_soft, soft, -1, soft.dtype).div_(ctx.tau)
        # perplexity = sum_g exp(H_g), H_g = -sum_v avg log(avg + eps), avg = mean_n p
        eps = 1e-7
        grad_avg = -(grad_perplexity * torch.exp(entropy))[:, None] * (
            torch.log(avg + eps) + avg / (avg + eps)
        )
        grad_p = (grad_avg / n).expand_as(p)  # the same for every frame
        grad.add_(torch._softmax_backward_data(grad_p, p, -1, p.dtype))
        group = torch.arange(g, device=book.device).expand_as(index)
        grad_book = torch.zeros_like(book).index_put_((group, index), grad_codes, accumulate=True)
        return grad, grad_book, None, None


class GumbelQuantizer(nn.Module):
    """Product quantiser: ``groups`` codebooks, Gumbel-softmax choice (straight-through).

    Parameters
    ----------
    in_dim
        Feature dimension.
    config
        Supplies ``groups``, ``entries`` and ``codevector_dim``.
    """

    def __init__(self, in_dim: int, config: SeisLMConfig) -> None:
        super().__init__()
        self.groups, self.entries = config.groups, config.entries
        self.weight_proj = nn.Linear(in_dim, self.groups * self.entries)
        nn.init.normal_(self.weight_proj.weight, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.codevectors = nn.Parameter(
            torch.rand(self.groups * self.entries, config.codevector_dim // self.groups)
        )

    def forward(
        self, x: torch.Tensor, *, tau: float, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise ``x`` of shape ``(n, in_dim)``.

        Returns
        -------
        (codes, perplexity, index)
            ``(n, codevector_dim)`` codes, the summed per-group perplexity of the soft
            assignments averaged over ``x`` (diversity measure, at most groups x entries),
            and the chosen entries ``(n, groups)``.
        """
        n = x.shape[0]
        logits = self.weight_proj(x).view(n, self.groups, self.entries)
        book = self.codevectors.view(self.groups, self.entries, -1)
        if self.training:
            u = torch.rand((n * self.groups, self.entries), generator=generator)
            u = u.to(logits.device, logits.dtype).view_as(logits)
            codes, perplexity, index = _GumbelQuantize.apply(logits, book, u, tau)
        else:
            index = logits.argmax(-1)
            codes = book[torch.arange(self.groups, device=x.device), index]
            avg = F.softmax(logits.float(), dim=-1).mean(0)
            perplexity = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()
        codes = codes.reshape(n, -1)
        return codes, perplexity, index


def _fft_size(n: int) -> int:
    """Smallest ``2**a * 3**b * 5**c >= n``.

    Fast for pocketFFT and cuFFT, and fewer frequencies to mix than the next power of two
    (800 instead of 1024 for 749 frames and a kernel of 32).
    """
    while True:
        r = n
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return n
        n += 1


def grouped_conv_fft(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, groups: int
) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=K // 2, groups=groups)[..., :frames]`` by FFT.

    The positional embedding's grouped convolution with a long kernel (128) is the slowest
    layer on CPU when run directly (oneDNN has no fast grouped long-kernel path); in the
    Fourier domain it costs a few FFTs and a small per-frequency matrix product.

    Parameters
    ----------
    x
        ``(batch, channels, frames)``.
    weight
        ``(channels, channels // groups, K)`` (a ``Conv1d`` weight).
    bias
        ``(channels,)`` or ``None``.
    groups
        Number of channel groups.

    Returns
    -------
    torch.Tensor
        ``(batch, channels, frames)``.
    """
    b, ch, t = x.shape
    k = weight.shape[-1]
    pad = k // 2
    n = _fft_size(t + k - 1)
    cg = ch // groups
    xf = torch.fft.rfft(x.view(b, groups, cg, t), n=n)  # (b, g, in, f)
    wf = torch.fft.rfft(weight.flip(-1).view(groups, cg, cg, k), n=n)  # (g, out, in, f)
    yf = torch.einsum("bgif,goif->bgof", xf, wf)
    y = torch.fft.irfft(yf, n=n)[..., k - 1 - pad : k - 1 - pad + t].reshape(b, ch, t)
    return y if bias is None else y + bias[:, None]


class _Dropout(nn.Module):
    """Dropout whose CPU mask comes from 16-bit random words (``p`` to within 2**-16).

    ``F.dropout`` on CPU draws one Mersenne-Twister number per element; one 64-bit draw
    gives four 16-bit words here, which roughly halves the cost of the mask (docs/seislm.md
    has the timing). Elsewhere (CUDA) it is ``F.dropout``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        n = x.numel()
        # four uniform 16-bit words per uniform 64-bit draw
        words = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None)
        threshold = round(self.p * 65536) - 32768
        keep = words.view(torch.int16)[:n].view(x.shape) >= threshold
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


class _Block(nn.Module):
    """Post-norm transformer block (wav2vec2 base) on `F.scaled_dot_product_attention`.

    It can compute its output at chosen frames only (``select``): pretraining scores the
    masked frames alone, so the last block skips the queries, residuals and feed-forward
    of the others (about half the frames), with the same result at the chosen ones.

    No dropout on the attention weights: it would force the unfused attention path,
    which materialises every ``frames x frames`` matrix. No dropout inside the
    feed-forward block either (fairseq's wav2vec2 base has ``activation_dropout=0``): on
    the ``ffn``-wide activations it costs a noticeable share of a CPU pretraining step.
    """

    def __init__(self, c: SeisLMConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.out = nn.Linear(c.hidden, c.hidden)
        self.norm1 = nn.LayerNorm(c.hidden)
        self.ffn = nn.Sequential(nn.Linear(c.hidden, c.ffn), nn.GELU(), nn.Linear(c.ffn, c.hidden))
        self.norm2 = nn.LayerNorm(c.hidden)
        self.dropout = _Dropout(c.dropout)

    def forward(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, hidden)`` -> same, or ``(batch, m, hidden)`` at frames ``select``.

        ``select`` ``(batch, m)`` frame indices: only these frames are queries (and get
        the residual and feed-forward parts); every frame is still a key and a value.
        """
        b, t, h = x.shape
        d = h // self.heads
        if select is None:
            q, k, v = self.qkv(x).view(b, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        else:
            w, bias = self.qkv.weight, self.qkv.bias
            k, v = F.linear(x, w[h:], bias[h:]).view(b, t, 2, self.heads, d).permute(2, 0, 3, 1, 4)
            x = x.gather(1, select[..., None].expand(-1, -1, h))
            q = F.linear(x, w[:h], bias[:h]).view(b, -1, self.heads, d).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, h)
        x = self.norm1(x + self.dropout(self.out(a)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class SeisLM(nn.Module):
    """The SeisLM encoder: conv feature encoder, conv positional embedding, transformer.

    Parameters
    ----------
    config
        Architecture (see `CONFIGS`).
    """

    def __init__(self, config: SeisLMConfig) -> None:
        super().__init__()
        self.config = c = config
        convs = []
        for i in range(c.conv_layers):
            c_in = 3 if i == 0 else c.conv_channels
            convs.append(nn.Conv1d(c_in, c.conv_channels, c.conv_kernel, c.conv_stride))
            if i == 0:  # wav2vec2's "group" norm on the first layer
                convs.append(nn.GroupNorm(c.conv_channels, c.conv_channels))
            convs.append(nn.GELU())
        self.feature_encoder = nn.Sequential(*convs)
        self.feature_norm = nn.LayerNorm(c.conv_channels)
        self.feature_projection = nn.Linear(c.conv_channels, c.hidden)
        self.mask_embedding = nn.Parameter(torch.rand(c.hidden))
        self.pos_conv = nn.Conv1d(
            c.hidden, c.hidden, c.pos_kernel, padding=c.pos_kernel // 2, groups=c.pos_groups
        )
        self.encoder_norm = nn.LayerNorm(c.hidden)
        self.transformer = nn.Sequential(*(_Block(c) for _ in range(c.layers)))
        self.dropout = _Dropout(c.dropout)
        self.quantizer = GumbelQuantizer(c.conv_channels, c)
        self.project_q = nn.Linear(c.codevector_dim, c.proj_dim)
        self.project_hid = nn.Linear(c.hidden, c.proj_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv features ``(batch, frames, conv_channels)`` of waveforms ``(batch, 3, samples)``."""
        if x.ndim != 3 or x.shape[1] != 3:
            raise InputError(None, f"expected waveforms (batch, 3, samples), got {tuple(x.shape)}")
        return self.feature_norm(self.feature_encoder(x).transpose(1, 2))

    def contextualize(
        self,
        feats: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        select: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the transformer: ``(batch, frames, hidden)``; masked frames get the mask vector.

        With ``select`` ``(batch, m)`` (frame indices) only those frames' embeddings
        ``(batch, m, hidden)`` are returned, and the last block computes only them.
        """
        h = self.dropout(self.feature_projection(feats))
        if mask is not None:
            h = torch.where(mask[..., None], self.mask_embedding.to(h.dtype), h)
        conv = self.pos_conv
        pos = grouped_conv_fft(h.transpose(1, 2), conv.weight, conv.bias, groups=conv.groups)
        h = self.dropout(self.encoder_norm(h + F.gelu(pos).transpose(1, 2)))
        *blocks, last = self.transformer
        for block in blocks:
            h = block(h)
        return last(h, select)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        with_features: bool = False,
        select: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Contextual frame embeddings ``(batch, frames, hidden)`` of ``(batch, 3, samples)``.

        ``mask`` ``(batch, frames)`` replaces frames by the mask embedding; with
        ``with_features`` the conv features ``(batch, frames, conv_channels)`` are returned
        too (pretraining quantises them), so that one forward call serves DDP. ``select``
        ``(batch, m)`` (frame indices) returns only those frames, ``(batch, m, hidden)``:
        pretraining needs the masked frames only, and the last block then skips the rest.
        """
        feats = self.features(x)
        hidden = self.contextualize(feats, mask, select=select)
        return (hidden, feats) if with_features else hidden


def compute_mask(
    batch: int, frames: int, *, prob: float, span: int, generator: torch.Generator
) -> torch.Tensor:
    """wav2vec2 span mask: ``round(prob * frames / span)`` random span starts per row.

    Returns
    -------
    torch.Tensor
        ``(batch, frames)`` bool; spans may overlap, so about ``1 - exp(-prob)`` of the
        frames are masked for long windows.
    """
    span = min(span, frames)
    starts = max(1, int(prob * frames / span + torch.rand((), generator=generator)))
    starts = min(starts, frames - span + 1)
    scores = torch.rand(batch, frames - span + 1, generator=generator)
    idx = scores.topk(starts, dim=1).indices
    begin = torch.zeros(batch, frames + 1)
    begin.scatter_(1, idx, 1.0)
    end = torch.zeros(batch, frames + 1)
    end.scatter_add_(1, idx + span, torch.ones_like(idx, dtype=end.dtype))
    return (begin - end).cumsum(1)[:, :frames] > 0


def sample_negatives(
    mask: torch.Tensor, *, negatives: int, generator: torch.Generator
) -> torch.Tensor:
    """For every masked frame, ``negatives`` other masked frames of the same window.

    Parameters
    ----------
    mask
        ``(batch, frames)`` bool.

    Returns
    -------
    torch.Tensor
        ``(n_masked, negatives)`` int64: for the masked frames in ``mask.nonzero()`` order,
        the rank (0 = first masked frame of that window) of each negative among its
        window's masked frames; never the frame itself (unless it is alone).
    """
    counts = mask.sum(1)
    row = mask.nonzero()[:, 0]
    rank = (mask.cumsum(1) - 1)[mask]
    others = (counts[row] - 1).clamp(min=1)
    r = (torch.rand(row.numel(), negatives, generator=generator) * others[:, None]).long()
    r = r + (r >= rank[:, None]).long()  # skip the frame itself
    return torch.minimum(r, (counts[row] - 1)[:, None])


def pretraining_loss(
    model: SeisLM, x: torch.Tensor, *, step: int, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked-span contrastive loss plus diversity loss for a batch of windows.

    Only masked frames enter the loss, so the encoder's last block computes only them
    (`SeisLM.forward` with ``select``). Per window, the masked frames' predictions and
    quantised targets are packed into ``(batch, M, proj_dim)`` (M: most masked frames in a
    window) and scored with one batched matrix product ``(batch, M, M)``; each frame's
    positive and its ``negatives`` sampled negatives are then gathered from its row. The
    public code instead builds a ``(1 + K, batch, frames, dim)`` candidate tensor over all
    frames and takes cosine similarities over it, which is where its time goes.

    Parameters
    ----------
    model
        The encoder, or a ``DistributedDataParallel`` wrapping it.
    x
        ``(batch, 3, samples)`` normalised windows.
    step
        Optimiser step (sets the Gumbel temperature).
    generator
        CPU generator for masks, negatives and Gumbel noise.

    Returns
    -------
    (loss, metrics)
        Scalar loss; metrics ``contrastive``, ``diversity``, ``perplexity``, ``accuracy``
        (fraction of masked frames whose positive scores highest), ``tau``.
    """
    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    c = net.config
    b, t = x.shape[0], c.frames(x.shape[-1])
    mask = compute_mask(b, t, prob=c.mask_prob, span=c.mask_span, generator=generator)
    neg = sample_negatives(mask, negatives=c.negatives, generator=generator).to(x.device)
    mask = mask.to(x.device)
    row, col = mask.nonzero().unbind(1)
    rank = (mask.cumsum(1) - 1)[mask]
    m = int(mask.sum(1).max())
    flat = row * m + rank  # the masked frames' rows in the packed (b * m) layout
    # the masked frames of each window, packed to (b, m); padding points at frame 0
    select = torch.zeros(b * m, dtype=torch.long, device=x.device).index_copy_(0, flat, col)
    packed_h, feats = model(x, mask, with_features=True, select=select.view(b, m))
    tau = c.gumbel_temperature(step)
    codes, perplexity, idx = net.quantizer(net.dropout(feats[mask]), tau=tau, generator=generator)
    targets = F.normalize(net.project_q(codes), dim=-1)  # (n, P)
    packed_t = targets.new_zeros(b * m, targets.shape[1]).index_copy(0, flat, targets)
    # padded rows of packed_p are finite but never gathered below: no loss, no gradient
    packed_p = F.normalize(net.project_hid(packed_h), dim=-1)  # (b, m, P)
    sim = torch.bmm(packed_p, packed_t.view(b, m, -1).transpose(1, 2)).view(b * m, m)
    # per masked frame: its positive (itself) and its negatives, gathered from its row
    cols = torch.cat([rank[:, None], neg], dim=1)  # (n, 1 + K)
    packed_cols = cols.new_zeros(b * m, cols.shape[1]).index_copy_(0, flat, cols)
    logits = sim.gather(1, packed_cols)[flat] / c.temperature
    # a negative with the same code as the positive is no negative
    # one integer per code (entries ** groups is far below 2 ** 63 for any real config)
    code = (idx * c.entries ** torch.arange(c.groups, device=x.device)).sum(1)  # (n,)
    packed_code = code.new_zeros(b * m).index_copy_(0, flat, code)
    same = packed_code[(row * m)[:, None] + cols] == code[:, None]
    same[:, 0] = False
    logits = logits.masked_fill(same, float("-inf"))
    target = torch.zeros(len(logits), dtype=torch.long, device=x.device)
    contrastive = F.cross_entropy(logits, target)
    n_codes = c.groups * c.entries
    diversity = (n_codes - perplexity) / n_codes
    loss = contrastive + c.diversity_weight * diversity
    accuracy = (logits.argmax(1) == 0).float().mean()
    return loss, {
        "contrastive": float(contrastive.detach()),
        "diversity": float(diversity.detach()),
        "perplexity": float(perplexity.detach()),
        "accuracy": float(accuracy),
        "tau": tau,
    }


class SeisLMPicker(nn.Module):
    """SeisLM encoder plus a per-frame head: P, S, noise logits and a detection logit.

    Frame outputs are linearly interpolated to the input length, so every sample gets a
    probability (SeisLM's upsampling for picking); with ``config.picker_subframes = r``
    the head gives ``r`` outputs per frame (a learned sub-frame upsampling) before that.

    Parameters
    ----------
    config
        Encoder architecture.
    """

    def __init__(self, config: SeisLMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SeisLM(config)
        h = config.hidden
        r = config.picker_subframes
        self.head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, 4 * r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, 4, samples)`` (P, S, noise, detection) of ``(batch, 3, samples)``."""
        h = self.head(self.encoder(x))  # (batch, frames, 4 r)
        b, t, _ = h.shape
        r = self.config.picker_subframes
        h = h.view(b, t, 4, r).permute(0, 2, 1, 3).reshape(b, 4, t * r)
        return F.interpolate(h, size=x.shape[-1], mode="linear", align_corners=True)

    def probabilities(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phase (batch, 3, samples) softmax over P/S/noise, detection (batch, samples))``."""
        logits = self(x)
        return logits[:, :3].softmax(1), logits[:, 3].sigmoid()
