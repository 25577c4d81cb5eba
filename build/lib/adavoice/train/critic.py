"""A second network trained in turn with the model, as a GAN's discriminator (see
:class:`adavoice.train.loop.Trainer`'s ``critic``)."""

from __future__ import annotations

from typing import Callable

import torch


class Critic:
    """A second network trained in turn with the model, as a GAN's discriminator.

    From ``start_step`` on, every step first trains it once: ``loss_fn(module, outputs)`` on the
    task's outputs (entries whose key starts with ``_`` carry tensors such as the generated
    audio), with its own AdamW, constant learning rate and gradient clipping. Then, from
    ``start_step + warmup_steps``, ``model_terms(module, outputs) -> dict`` is added to the
    model's loss: each term times its weight in ``weights`` (its log keeps the raw value).
    Its weights and optimizer travel in the model's checkpoint under ``critic``; a checkpoint
    without them cannot be resumed with a critic (start a new run from the release).
    """

    def __init__(self, module: torch.nn.Module, loss_fn: Callable, model_terms: Callable,
                 weights: dict[str, float], learning_rate: float = 2e-4,
                 betas: tuple[float, float] = (0.8, 0.99), start_step: int = 0,
                 warmup_steps: int = 0, grad_clip: float = 10.0):
        self.module, self.loss_fn, self.model_terms = module, loss_fn, model_terms
        self.weights = dict(weights)
        self.learning_rate, self.betas = learning_rate, betas
        self.start_step, self.warmup_steps, self.grad_clip = start_step, warmup_steps, grad_clip
        self.optimizer = None  # made by attach(), once the module is on its device

    def attach(self, device: torch.device, world: int, use_amp: bool) -> None:
        self.module = self.module.to(device)
        self.wrapped = self.module
        if world > 1:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(self.module)
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=self.learning_rate,
                                           betas=self.betas, weight_decay=1e-6)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def trains_at(self, step: int) -> bool:
        return step >= self.start_step

    def guides_at(self, step: int) -> bool:
        return step >= self.start_step + self.warmup_steps

    def update(self, outputs: dict, device_type: str = "cpu") -> dict[str, float]:
        """One optimisation step of the critic on the task's outputs (autocast, when the run
        uses AMP, covers the forward only)."""
        self.module.train()
        with torch.autocast(device_type, dtype=torch.float16, enabled=self.scaler.is_enabled()):
            loss = self.loss_fn(self.wrapped, outputs)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"critic_loss": float(loss.detach()), "critic_grad_norm": float(grad_norm)}

    def terms_for_model(self, outputs: dict, device_type: str = "cpu") -> dict:
        """``model_terms`` with the critic's own weights frozen: the model's backward passes
        through the critic without filling (or, under DDP, all-reducing) its gradients."""
        flags = [p.requires_grad for p in self.module.parameters()]
        for p in self.module.parameters():
            p.requires_grad_(False)
        try:
            with torch.autocast(device_type, dtype=torch.float16,
                                enabled=self.scaler.is_enabled()):
                return self.model_terms(self.module, outputs)
        finally:
            for p, flag in zip(self.module.parameters(), flags, strict=True):
                p.requires_grad_(flag)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "start_step": self.start_step}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_step = state.get("start_step", self.start_step)
