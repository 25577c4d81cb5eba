"""Shrink a HiFi-GAN generator by keeping its strongest channels (issue 18 part 2, "shrink the
teacher"): the student has the teacher's layers with fewer channels per stage, and every weight
it keeps is the teacher's own, so it starts near the teacher instead of from noise.

A channel's strength is measured on real mels: for a stage's residual stream (the channels
every layer of that stage reads and adds to), the root-mean-square of the stream over the
upsampled input and the blocks' mean; for the hidden channels between a block's dilated and
plain convolution, that RMS times the norm of the plain convolution's weights that read the
channel (a loud channel nobody reads is not strong). The chosen channels keep their order.

>>> teacher = HiFiGAN(HiFiGANConfig.tiny()).eval()
>>> student = prune_generator(teacher, (16, 8, 4, 2, 1), torch.randn(2, 80, 12) - 5)
>>> student.cfg.channels, student(torch.randn(1, 80, 10)).shape
((16, 8, 4, 2, 1), torch.Size([1, 2304]))
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch.nn import functional as F

from adavoice.errors import ConfigError
from adavoice.models.hifigan import HiFiGAN, HiFiGANConfig, ResidualBlock  # noqa: F401


def _mean_square(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (C,) mean square over batch and time."""
    return x.float().pow(2).mean(dim=(0, 2))


@torch.no_grad()
def channel_strengths(generator: HiFiGAN, mels: torch.Tensor) -> dict:
    """Per-channel strengths of ``generator`` on ``mels`` (B, n_mels, T): ``stream`` (one (C,)
    tensor per stage, conv_pre's output first) and ``hidden`` (one (C,) tensor per residual
    pair, in module order)."""
    cfg = generator.cfg
    slope = cfg.leaky_slope
    per_stage = len(cfg.resblock_kernel_sizes)
    x = generator.conv_pre(mels)
    stream, hidden = [_mean_square(x)], []
    for stage, upsample in enumerate(generator.ups):
        x = upsample(F.leaky_relu(x, slope))
        energy = _mean_square(x)
        outputs = []
        for block in generator.resblocks[stage * per_stage:(stage + 1) * per_stage]:
            y = x
            for dilated, plain in zip(block.convs1, block.convs2, strict=True):
                inner = F.leaky_relu(dilated(F.leaky_relu(y, slope)), slope)
                reads = plain.weight.float().pow(2).sum(dim=(0, 2)).sqrt()
                hidden.append(_mean_square(inner).sqrt() * reads)
                y = y + plain(inner)
            outputs.append(y)
        x = sum(outputs) / per_stage
        stream.append(energy + _mean_square(x))
    return {"stream": [s.sqrt() for s in stream], "hidden": hidden}


def _checked_mels(generator: HiFiGAN, mels: torch.Tensor) -> torch.Tensor:
    if not isinstance(mels, torch.Tensor) or mels.dim() != 3 \
            or mels.shape[1] != generator.cfg.n_mels or mels.shape[-1] < 2:
        raise ConfigError(f"calibration mels must be (batch, {generator.cfg.n_mels}, frames >= 2)",
                          fix="stack crops of real log-mels")
    return mels.float()


def _float(generator: HiFiGAN) -> HiFiGAN:
    """``generator`` in float32 for measuring; a copy when it is not (the caller's module stays
    as it is)."""
    if any(p.dtype != torch.float32 for p in generator.parameters()):
        generator = copy.deepcopy(generator).float()
    return generator.eval()


def _strongest(strength: torch.Tensor, count: int) -> torch.Tensor:
    if count > strength.numel():
        raise ConfigError(f"cannot keep {count} of {strength.numel()} channels",
                          fix="choose stage_channels no wider than the teacher's")
    return torch.topk(strength, count).indices.sort().values


@torch.no_grad()
def prune_generator(generator: HiFiGAN, channels: tuple, mels: torch.Tensor) -> HiFiGAN:
    """A new generator with ``channels`` (one count after conv_pre and one per upsampling; see
    ``HiFiGANConfig.stage_channels``) whose weights are ``generator``'s strongest channels,
    measured on ``mels`` (B, n_mels, T) natural-log mels of real speech."""
    cfg = generator.cfg
    channels = tuple(channels)
    if len(channels) != len(cfg.channels):
        raise ConfigError(f"stage_channels needs {len(cfg.channels)} counts, got {len(channels)}")
    student_cfg = replace(cfg, stage_channels=channels)  # checks the counts
    generator = _float(generator)
    strengths = channel_strengths(generator, _checked_mels(generator, mels))
    keep = [_strongest(s, c) for s, c in zip(strengths["stream"], channels, strict=True)]
    student = HiFiGAN(student_cfg).eval()

    student.conv_pre.weight.copy_(generator.conv_pre.weight[keep[0]])
    student.conv_pre.bias.copy_(generator.conv_pre.bias[keep[0]])
    kept_hidden: list[torch.Tensor] = []
    hidden = iter(strengths["hidden"])
    per_stage = len(cfg.resblock_kernel_sizes)
    for stage, (source, target) in enumerate(zip(generator.ups, student.ups, strict=True)):
        inputs, outputs = keep[stage], keep[stage + 1]
        # ConvTranspose1d weights are (in, out, kernel)
        target.weight.copy_(source.weight[inputs][:, outputs])
        target.bias.copy_(source.bias[outputs])
        blocks = zip(generator.resblocks[stage * per_stage:(stage + 1) * per_stage],
                     student.resblocks[stage * per_stage:(stage + 1) * per_stage], strict=True)
        for old, new in blocks:
            _prune_block(old, new, outputs, hidden, kept_hidden)
    student.conv_post.weight.copy_(generator.conv_post.weight[:, keep[-1]])
    student.conv_post.bias.copy_(generator.conv_post.bias)
    # which of the teacher's channels each layer kept, for refit (not saved with the weights)
    student.pruned_from = {"stream": keep, "hidden": kept_hidden}
    return student


def _prune_block(old: ResidualBlock, new: ResidualBlock, stream: torch.Tensor, hidden,
                 kept: list) -> None:
    width = len(stream)
    pairs = zip(old.convs1, old.convs2, new.convs1, new.convs2, strict=True)
    for dilated, plain, new_dilated, new_plain in pairs:
        inner = _strongest(next(hidden), width)
        kept.append(inner)
        new_dilated.weight.copy_(dilated.weight[inner][:, stream])
        new_dilated.bias.copy_(dilated.bias[inner])
        new_plain.weight.copy_(plain.weight[stream][:, inner])
        new_plain.bias.copy_(plain.bias[stream])


# ---- refitting the kept weights ------------------------------------------------------------
# Dropping channels drops their share of every sum that reads them, and the loss compounds
# through ~80 layers (the first pruned students were near silent). Each layer of the student
# is therefore refitted in turn on the calibration mels, to reproduce the teacher's output at
# the kept channels from the student's own (already refitted) inputs (Luo et al., ThiNet,
# 2017; He et al., 2017): every convolution by ridge least squares, each transposed
# (upsampling) convolution only by a per-channel scale and shift. A residual convolution is
# fitted to what the teacher's stream becomes minus the student's stream, so the stream
# tracks the teacher's.

def _fit_conv(conv, inputs: torch.Tensor, target: torch.Tensor, generator: torch.Generator,
              positions: int, ridge: float) -> torch.Tensor:
    """Refit ``conv`` (Conv1d) so conv(inputs) ~ target; returns its new output."""
    kernel, dilation, padding = conv.kernel_size[0], conv.dilation[0], conv.padding[0]
    columns = F.unfold(inputs.float().unsqueeze(2), (1, kernel), dilation=(1, dilation),
                       padding=(0, padding))  # (B, C_in * K, T)
    features = columns.transpose(1, 2).reshape(-1, columns.shape[1])
    wanted = target.float().transpose(1, 2).reshape(-1, target.shape[1])
    if len(features) > positions:
        pick = torch.randperm(len(features), generator=generator)[:positions].to(features.device)
        features, wanted = features[pick], wanted[pick]
    features = torch.cat([features, features.new_ones(len(features), 1)], dim=1)
    gram = features.T @ features
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), device=gram.device)
    solution = torch.linalg.solve(gram, features.T @ wanted)  # (C_in * K + 1, C_out)
    conv.weight.copy_(solution[:-1].T.reshape(conv.weight.shape))
    conv.bias.copy_(solution[-1])
    return conv(inputs)


def _fit_scale(layer, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Refit ``layer``'s per-output-channel scale and bias so layer(inputs) ~ target."""
    out = layer(inputs).float()
    centred, goal = out - out.mean(dim=(0, 2), keepdim=True), target - target.mean(dim=(0, 2),
                                                                                   keepdim=True)
    scale = (centred * goal).sum(dim=(0, 2)) / centred.pow(2).sum(dim=(0, 2)).clamp_min(1e-12)
    shift = target.mean(dim=(0, 2)) - scale * out.mean(dim=(0, 2))
    shape = (1, -1, 1) if isinstance(layer, torch.nn.ConvTranspose1d) else (-1, 1, 1)
    layer.weight.mul_(scale.view(*shape))
    layer.bias.copy_(layer.bias * scale + shift)
    return layer(inputs)


@torch.no_grad()
def refit(teacher: HiFiGAN, student: HiFiGAN, mels: torch.Tensor, seed: int = 0,
          positions: int = 40_000, ridge: float = 1e-3) -> HiFiGAN:
    """Refit every layer of ``student`` (made by :func:`prune_generator` from ``teacher`` in
    this process: it names the channels it kept) in place, in order, on ``mels``; see the
    comment above. Returns ``student``."""
    kept = getattr(student, "pruned_from", None)
    if kept is None:
        raise ConfigError("refit needs a student made by prune_generator from this teacher",
                          fix="prune_generator(teacher, channels, mels), then refit")
    teacher = _float(teacher)
    cfg, slope = teacher.cfg, teacher.cfg.leaky_slope
    mels = _checked_mels(teacher, mels)
    keep = kept["stream"]
    hidden = iter(kept["hidden"])
    rng = torch.Generator().manual_seed(seed)
    per_stage = len(cfg.resblock_kernel_sizes)

    t = teacher.conv_pre(mels)
    s = _fit_conv(student.conv_pre, mels, t[:, keep[0]], rng, positions, ridge)
    for stage in range(len(teacher.ups)):
        t = teacher.ups[stage](F.leaky_relu(t, slope))
        s = _fit_scale(student.ups[stage], F.leaky_relu(s, slope), t[:, keep[stage + 1]])
        stream = keep[stage + 1]
        t_outs, s_outs = [], []
        blocks = zip(teacher.resblocks[stage * per_stage:(stage + 1) * per_stage],
                     student.resblocks[stage * per_stage:(stage + 1) * per_stage], strict=True)
        for old, new in blocks:
            ty, sy = t, s
            pairs = zip(old.convs1, old.convs2, new.convs1, new.convs2, strict=True)
            for dilated, plain, new_dilated, new_plain in pairs:
                inner = next(hidden)
                t_inner = F.leaky_relu(dilated(F.leaky_relu(ty, slope)), slope)
                s_pre = _fit_conv(new_dilated, F.leaky_relu(sy, slope),
                                  dilated(F.leaky_relu(ty, slope))[:, inner], rng, positions,
                                  ridge)
                ty = ty + plain(t_inner)
                sy = sy + _fit_conv(new_plain, F.leaky_relu(s_pre, slope),
                                    ty[:, stream] - sy, rng, positions, ridge)
            t_outs.append(ty)
            s_outs.append(sy)
        t, s = sum(t_outs) / per_stage, sum(s_outs) / per_stage
    target = teacher.conv_post(F.leaky_relu(t, cfg.final_leaky_slope))
    _fit_conv(student.conv_post, F.leaky_relu(s, cfg.final_leaky_slope), target, rng, positions,
              ridge)
    return student
