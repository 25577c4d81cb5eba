"""The acoustic model: FastSpeech 2 with AdaSpeech conditional layer norm and acoustic condition
modelling, plus a jointly trained aligner.

>>> model = AcousticModel(AcousticConfig.tiny(n_symbols=10, n_speakers=2)).eval()
>>> voice = model.speaker_condition(0)
>>> out = model.infer(torch.tensor([[1, 2, 3]]), voice)
>>> out.mel.shape[:2]
torch.Size([1, 80])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adavoice.config import MAX_LOG_DURATION
from adavoice.errors import ModelFormatError
from adavoice.models.acoustic_config import AcousticConfig
from adavoice.nn.alignment import AlignmentEncoder, monotonic_alignment_search
from adavoice.nn.cln import ConditionalLayerNorm
from adavoice.nn.transformer import FFTStack
from adavoice.nn.variance import BucketEmbedding, VariancePredictor, regulate_length, token_average

LOG_2_OVER_12 = 0.057762265046662105  # ln(2) / 12: one semitone in natural-log frequency


@dataclass
class SpeakerCondition:
    """Everything that makes a voice: speaker vector (speaker_dim,), utterance vector (hidden,)
    and the decoder's CLN (scale, bias) pairs, each (hidden,). ``norm_params=None`` means
    "compute them from the speaker vector with the model's CLN projections"."""

    speaker_vector: torch.Tensor
    utterance_vector: torch.Tensor
    norm_params: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    decoder: nn.Module | None = None  # a voice's own decoder (LoRA / full fine-tuning kinds)
    # the voice's own values of some of the base's mel post-filter tensors (names as in
    # MelPostfilter.voice_tensors); None: the base's (adavoice.adaptation.postfilter)
    postfilter: dict[str, torch.Tensor] | None = None


@dataclass
class AcousticOutput:
    """mel: (B, n_mels, T) log-mel; durations: (B, N) frames; frame_mask: (B, T) bool;
    log_duration/pitch/energy predictions (B, N); training extras when targets were given."""

    mel: torch.Tensor
    durations: torch.Tensor
    frame_mask: torch.Tensor
    log_duration: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor
    pitch_target: torch.Tensor | None = None
    energy_target: torch.Tensor | None = None
    phoneme_condition: torch.Tensor | None = None
    phoneme_condition_target: torch.Tensor | None = None
    log_attention: torch.Tensor | None = None
    hard_attention: torch.Tensor | None = None
    decoder_input: torch.Tensor | None = None  # (B, T, H) length-regulated text side


class UtteranceEncoder(nn.Module):
    """AdaSpeech utterance-level acoustic encoder: convs over a reference mel, masked mean pool.

    forward(mel (B, n_mels, T), frame_mask (B, T)) -> (B, hidden)."""

    def __init__(self, n_mels: int, hidden: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 5, padding=2), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 5, padding=2, stride=1), nn.ReLU(),
        )
        self.out = nn.Linear(hidden, hidden)

    def forward(self, mel, frame_mask):
        keep = frame_mask.unsqueeze(1).to(mel.dtype)
        h = self.convs(mel * keep) * keep
        pooled = h.sum(-1) / keep.sum(-1).clamp(min=1.0)
        return self.out(pooled)


class PhonemeConditionEncoder(nn.Module):
    """AdaSpeech phoneme-level encoder: token-averaged mel -> small vector per token.

    forward(token_mel (B, N, n_mels), text_mask (B, N)) -> (B, N, dim), in (-1, 1) when
    ``bounded``."""

    def __init__(self, n_mels: int, hidden: int, dim: int, bounded: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_mels, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.bounded = bounded

    def forward(self, token_mel, text_mask):
        out = self.net(token_mel)
        if self.bounded:
            out = torch.tanh(out)
        return out * text_mask.unsqueeze(-1).to(token_mel.dtype)


MIN_FRAMES = 2  # the fewest frames an utterance renders to at inference
# A token's predicted frames before length_scale: 100 frames is 1.16 s, several times the
# longest pause a trained model predicts; only damaged weights reach it, and uncapped they
# would ask for any amount of memory.
MAX_FRAMES_PER_TOKEN = 100


class AcousticModel(nn.Module):
    """Text tokens -> log-mel. See the module docstring for the parts; DESIGN §4."""

    def __init__(self, cfg: AcousticConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.token_embedding = nn.Embedding(cfg.n_symbols, h, padding_idx=0)
        self.encoder = FFTStack(cfg.encoder_layers, h, cfg.heads, cfg.ffn_hidden, cfg.ffn_kernel,
                                cfg.dropout, cfg.attention_dropout)
        self.speaker_embedding = nn.Embedding(cfg.n_speakers, cfg.speaker_dim)
        self.speaker_to_hidden = nn.Linear(cfg.speaker_dim, h)
        self.utterance_encoder = UtteranceEncoder(cfg.n_mels, h) if cfg.utterance_encoder else None
        self.phoneme_encoder = PhonemeConditionEncoder(cfg.n_mels, h, cfg.phoneme_condition_dim,
                                                      cfg.phoneme_condition_tanh)
        self.phoneme_predictor = VariancePredictor(h, cfg.variance_filter, cfg.variance_kernel,
                                                   cfg.variance_dropout, cfg.phoneme_condition_dim)
        self.phoneme_to_hidden = nn.Linear(cfg.phoneme_condition_dim, h)
        vp = (h, cfg.variance_filter, cfg.variance_kernel, cfg.variance_dropout)
        self.duration_predictor = VariancePredictor(*vp)
        self.pitch_predictor = VariancePredictor(*vp)
        self.energy_predictor = VariancePredictor(*vp)
        r = cfg.variance_range_std
        self.pitch_embedding = BucketEmbedding(cfg.pitch_bins, h, -r, r)
        self.energy_embedding = BucketEmbedding(cfg.energy_bins, h, -r, r)
        self.decoder = FFTStack(cfg.decoder_layers, h, cfg.heads, cfg.ffn_hidden, cfg.ffn_kernel,
                                cfg.dropout, cfg.attention_dropout, condition_dim=cfg.speaker_dim)
        self.mel_out = nn.Linear(h, cfg.n_mels)
        self.aligner = AlignmentEncoder(cfg.n_mels, h, cfg.aligner_attention_dim,
                                        cfg.aligner_temperature, cfg.aligner_mel_center,
                                        cfg.aligner_mel_scale)
        self.aligner_embedding = (nn.Embedding(cfg.n_symbols, h, padding_idx=0)
                                  if cfg.aligner_own_embedding else None)
        # corpus statistics (log-F0 in ln Hz, energy in ln units) and per-speaker mean
        # utterance vectors for synthesis without a reference clip; set by training
        self.register_buffer("pitch_stats", torch.tensor([5.0, 0.3]))
        self.register_buffer("energy_stats", torch.tensor([0.0, 1.0]))
        self.register_buffer("speaker_utterance_vectors", torch.zeros(cfg.n_speakers, h))
        self.inference_dtype: torch.dtype | None = None  # see set_inference_precision

    def set_inference_precision(self, precision: str = "auto") -> torch.dtype:
        """The dtype of the decoder's matrix products at inference (training is unaffected).

        ``"float32"``; ``"bfloat16"``; ``"auto"``: bfloat16 on a CPU with AMX tiles (where
        those products run ~5x faster), else float32. The text encoder and the variance
        adaptor stay in float32, so durations are the same in every precision; the decoder's
        mel moves by ~0.002 (mean |log-mel| difference, measured on the demo base)."""
        from adavoice.nn.transformer import resolve_inference_dtype

        dtype = resolve_inference_dtype(precision)
        self.inference_dtype = None if dtype == torch.float32 else dtype
        self.decoder.set_inference_dtype(self.inference_dtype)
        return dtype

    # ---- voices -----------------------------------------------------------------------------
    def conditional_norms(self) -> list[ConditionalLayerNorm]:
        return self.decoder.conditional_norms()

    def speaker_condition(self, speaker_id: int) -> SpeakerCondition:
        """The SpeakerCondition of a speaker seen in training."""
        vector = self.speaker_embedding.weight[speaker_id]
        return SpeakerCondition(vector, self.speaker_utterance_vectors[speaker_id])

    def condition_norm_params(self, voice: SpeakerCondition
                              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-CLN (scale, bias), each (1, hidden)."""
        if voice.norm_params is not None:
            return [(s.view(1, -1), b.view(1, -1)) for s, b in voice.norm_params]
        condition = voice.speaker_vector.view(1, -1)
        decoder = voice.decoder if voice.decoder is not None else self.decoder
        return [norm.scale_bias(condition) for norm in decoder.conditional_norms()]

    # ---- shared pieces ----------------------------------------------------------------------
    def encode_text(self, tokens, text_mask, speaker_vector, utterance_vector):
        """tokens (B, N) -> encoder output with speaker and utterance conditions added (B, N, H)."""
        embedded = self.token_embedding(tokens)
        hidden = self.encoder(embedded, text_mask)
        hidden = hidden + self.speaker_to_hidden(speaker_vector).unsqueeze(1)
        if self.utterance_encoder is not None:
            hidden = hidden + utterance_vector.unsqueeze(1)
        return hidden * text_mask.unsqueeze(-1).to(hidden.dtype), embedded

    def decode(self, frames, frame_mask, speaker_vector=None, norm_params=None, decoder=None):
        """frames (B, T, H) -> mel (B, n_mels, T); CLN from the speaker vector or given params;
        ``decoder`` replaces the base decoder (a voice's own copy)."""
        flat = None
        if norm_params is not None:
            batch = frames.shape[0]
            flat = [(s.expand(batch, -1), b.expand(batch, -1)) for s, b in norm_params]
        # a voice's own decoder copy runs in the base's precision (LoRA-wrapped blocks: fp32)
        if decoder is not None:
            decoder.set_inference_dtype(self.inference_dtype)
        decoder = decoder if decoder is not None else self.decoder
        hidden = decoder(frames, frame_mask, condition=speaker_vector, norm_params=flat)
        mel = self.mel_out(hidden) * frame_mask.unsqueeze(-1).to(hidden.dtype)
        return mel.transpose(1, 2)

    def normalise_pitch(self, log_f0):
        return (log_f0 - self.pitch_stats[0]) / self.pitch_stats[1]

    # ---- training ---------------------------------------------------------------------------
    def align(self, tokens, text_mask, mel, frame_mask, log_prior=None, embedded=None):
        """The aligner's (B, T, N) log soft attention and its (B, T, N) 0/1 MAS path.
        ``embedded`` is the text encoder's token embedding when the caller already has it."""
        if self.aligner_embedding is not None:
            keys = self.aligner_embedding(tokens)
        else:
            keys = embedded if embedded is not None else self.token_embedding(tokens)
        log_attention = self.aligner(mel, keys, text_mask, log_prior)
        hard = monotonic_alignment_search(log_attention, text_mask.sum(1), frame_mask.sum(1))
        return log_attention, hard

    def forward(self, tokens, text_mask, speakers, mel, frame_mask, pitch, energy, log_prior=None,
                voice: SpeakerCondition | None = None, durations=None,
                predicted_condition_share: float = 0.0, predicted_variance: bool = False,
                voice_utterance: bool = False):
        """Teacher-forced pass. tokens (B, N); speakers (B,); mel (B, n_mels, T) target;
        pitch (B, T) frame log-F0 in ln Hz, interpolated through unvoiced frames;
        energy (B, T) frame ln-energy; masks bool. Pitch and energy are averaged per token with
        the aligner's hard durations, so their targets follow the alignment as it learns.

        ``voice`` (adaptation) replaces the speaker table: its speaker vector, CLN parameters
        and decoder are used for every row, and ``speakers`` is ignored. ``durations`` (B, N)
        replaces the aligner (a frozen aligner's paths, computed once); the output then has no
        attention, and the alignment losses are zero.

        ``predicted_condition_share``: the share of utterances (drawn per row) whose decoder
        gets the phoneme-level predictor's output instead of the encoder's, as at inference,
        so the decoder learns to work from what it will be given (1.0: every row).

        ``predicted_variance``: the decoder gets what synthesis would give it (the voice's
        utterance vector when ``voice`` is given, the phoneme predictor's condition, the
        predicted pitch and energy) on the given (or aligned) durations, so the mel can still
        be compared frame by frame with the real one. Losses are unchanged. Adaptation can
        score its held-out clips this way (``AdapterConfig.validation="synthesis"``).
        ``voice_utterance``: only the utterance vector is the voice's, not the reference mel's
        (adaptation that trains it, ``AdapterConfig.train_utterance_vector``)."""
        if voice is None:
            speaker_vector = self.speaker_embedding(speakers)
        else:
            speaker_vector = voice.speaker_vector.view(1, -1).expand(tokens.shape[0], -1)
        if (predicted_variance or voice_utterance) and voice is not None:  # the voice's own
            utterance_vector = voice.utterance_vector.view(1, -1).expand(tokens.shape[0], -1)
        else:
            utterance_vector = (self.utterance_encoder(mel, frame_mask)
                                if self.utterance_encoder is not None else None)
        hidden, embedded = self.encode_text(tokens, text_mask, speaker_vector, utterance_vector)
        log_attention = hard = None
        if durations is None:
            log_attention, hard = self.align(tokens, text_mask, mel, frame_mask, log_prior,
                                             embedded)
            durations = hard.sum(1).long()  # (B, N)

        phoneme_target = self.phoneme_encoder(token_average(mel.transpose(1, 2), durations),
                                              text_mask)
        phoneme_pred = self.phoneme_predictor(hidden.detach(), text_mask)
        condition = phoneme_pred if predicted_variance else phoneme_target
        if predicted_condition_share > 0 and not predicted_variance:
            use = torch.rand(tokens.shape[0], 1, 1, device=tokens.device)
            condition = torch.where(use < predicted_condition_share, phoneme_pred, condition)
        hidden = hidden + self.phoneme_to_hidden(condition)

        log_duration = self.duration_predictor(hidden, text_mask)
        pitch = token_average(pitch.unsqueeze(-1), durations).squeeze(-1)
        energy = token_average(energy.unsqueeze(-1), durations).squeeze(-1)
        spoken = text_mask & (durations > 0)  # a silent token's target is the corpus mean (0)
        pitch_norm = self.normalise_pitch(pitch) * spoken
        energy_norm = (energy - self.energy_stats[0]) / self.energy_stats[1] * spoken
        pitch_pred = self.pitch_predictor(hidden, text_mask)
        energy_pred = self.energy_predictor(hidden, text_mask)
        if predicted_variance:
            hidden = hidden + self.pitch_embedding(pitch_pred) + self.energy_embedding(energy_pred)
        else:
            hidden = (hidden + self.pitch_embedding(pitch_norm)
                      + self.energy_embedding(energy_norm))

        frames = regulate_length(hidden, durations, max_frames=mel.shape[-1])
        if voice is None:
            mel_pred = self.decode(frames, frame_mask, speaker_vector)
        else:
            mel_pred = self.decode(frames, frame_mask, speaker_vector,
                                   self.condition_norm_params(voice), voice.decoder)
        return AcousticOutput(
            mel=mel_pred, durations=durations, frame_mask=frame_mask, log_duration=log_duration,
            pitch=pitch_pred, energy=energy_pred, pitch_target=pitch_norm,
            energy_target=energy_norm, phoneme_condition=phoneme_pred,
            phoneme_condition_target=phoneme_target, log_attention=log_attention,
            hard_attention=hard, decoder_input=frames,
        )

    # ---- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def infer(self, tokens, voice: SpeakerCondition, text_mask=None, length_scale=1.0,
              pitch_shift_semitones=0.0, energy_scale=1.0, reference_mel=None) -> AcousticOutput:
        """tokens (B, N) -> AcousticOutput with predicted durations, pitch and energy.

        ``reference_mel`` (B, n_mels, T) replaces the voice's stored utterance vector."""
        if text_mask is None:
            text_mask = tokens != 0
        batch = tokens.shape[0]
        speaker_vector = voice.speaker_vector.view(1, -1).expand(batch, -1)
        if reference_mel is not None and self.utterance_encoder is not None:
            ref_mask = torch.ones(reference_mel.shape[0], reference_mel.shape[-1], dtype=torch.bool)
            utterance_vector = self.utterance_encoder(reference_mel, ref_mask)
        else:
            utterance_vector = voice.utterance_vector.view(1, -1).expand(batch, -1)
        out = self.synthesis_pass(tokens, text_mask, speaker_vector, utterance_vector,
                                  self.condition_norm_params(voice), voice.decoder,
                                  torch.as_tensor(float(length_scale)),
                                  torch.as_tensor(float(pitch_shift_semitones)),
                                  torch.as_tensor(float(energy_scale)))
        if not (out.log_duration.abs() <= MAX_LOG_DURATION).all():  # NaN fails too
            raise ModelFormatError("the duration predictor gave non-finite durations: the "
                                   "model's weights are damaged")
        return out

    def synthesis_pass(self, tokens, text_mask, speaker_vector, utterance_vector, norm_params,
                       decoder, length_scale, pitch_shift, energy_scale) -> AcousticOutput:
        """The inference computation without checks or Python branches on values, so the
        exported graph (adavoice.export.acoustic) is this very function: tokens (B, N);
        vectors (B, D); norm_params per-CLN (1, hidden) pairs; the three knobs 0-d tensors.
        Damaged weights give |log_duration| > MAX_LOG_DURATION, which callers check (the
        durations themselves are computed from a log-duration of 0 there, so no pass asks
        for unbounded memory)."""
        hidden, _ = self.encode_text(tokens, text_mask, speaker_vector, utterance_vector)
        hidden = hidden + self.phoneme_to_hidden(self.phoneme_predictor(hidden, text_mask))
        log_duration = self.duration_predictor(hidden, text_mask)
        usable = torch.where(log_duration.abs() <= MAX_LOG_DURATION, log_duration,
                             torch.zeros_like(log_duration))
        frames_per_token = (torch.exp(usable) - 1).clamp(max=MAX_FRAMES_PER_TOKEN)
        durations = torch.clamp(torch.round(frames_per_token * length_scale), min=0)
        durations = (durations * text_mask).long()
        # an utterance never renders to fewer than two frames (a centred inverse STFT makes
        # (frames - 1) * hop samples, so one frame would be no audio): its first token gets
        # what is missing
        missing = (MIN_FRAMES - durations.sum(1, keepdim=True)).clamp(min=0)
        durations = torch.cat([durations[:, :1] + missing, durations[:, 1:]], dim=1)
        pitch = self.pitch_predictor(hidden, text_mask)
        pitch = pitch + pitch_shift * LOG_2_OVER_12 / self.pitch_stats[1]
        energy = self.energy_predictor(hidden, text_mask)
        energy = energy + torch.log(energy_scale) / self.energy_stats[1]
        hidden = hidden + self.pitch_embedding(pitch) + self.energy_embedding(energy)
        frames = regulate_length(hidden, durations)
        frame_mask = (torch.arange(frames.shape[1], device=frames.device).unsqueeze(0)
                      < durations.sum(1, keepdim=True))
        mel = self.decode(frames, frame_mask, speaker_vector, norm_params, decoder)
        floor = torch.log(torch.tensor(1e-5))
        mel = torch.where(frame_mask.unsqueeze(1), mel, floor)
        return AcousticOutput(mel=mel, durations=durations, frame_mask=frame_mask,
                              log_duration=log_duration, pitch=pitch, energy=energy)
