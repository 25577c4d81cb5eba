"""The one training loop: batches from a sampler, a task that turns a batch into losses,
warm-up + decay schedule, gradient clipping, AMP on GPU, CSV/PNG curves, validation, atomic
checkpoints every N steps and on Ctrl-C, exact resume, and DDP under torchrun.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch

from adavoice.train.checkpoint import load_checkpoint, save_checkpoint
from adavoice.train.critic import Critic
from adavoice.train.settings import TrainConfig


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def distributed_context(device: str = "cpu") -> tuple[int, int]:
    """(rank, world_size); under torchrun, initialises the process group: NCCL when ``device``
    is CUDA (each process on the GPU of its LOCAL_RANK), gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        cuda = str(device).startswith("cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(process_device(device))
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def process_device(device: str) -> torch.device:
    """``device``, where a bare ``cuda`` under torchrun means this process's GPU (LOCAL_RANK)."""
    chosen = torch.device(device)
    if chosen.type == "cuda" and chosen.index is None and int(os.environ.get("WORLD_SIZE",
                                                                             "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


def recent_mean(history: list[dict], key: str, last: int = 50) -> float | None:
    """Mean of ``key`` over the last ``last`` logged steps, NaN (not yet logged) left out;
    None when nothing was logged."""
    values = [row[key] for row in history[-last:] if key in row and not math.isnan(row[key])]
    return round(sum(values) / len(values), 4) if values else None


def _stop_on_signals(stop: dict) -> Callable[[], None]:
    """Turn SIGTERM and SIGINT (which shells ignore in background jobs) into a request that the
    loop honours between steps, so ``kill`` or Ctrl-C never saves a half-applied step. Sets
    ``stop["requested"]``; returns a function that restores the previous handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def request(signum, frame):
        stop["requested"] = True

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore():
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


class Trainer:
    """Runs ``task(model, batch, step) -> dict[str, Tensor]`` (key ``loss`` is optimised).

    ``make_batches(epoch) -> list`` returns the epoch's batch list (deterministic per epoch);
    ``load_batch(item) -> batch`` turns one entry into a batch on the device. Entries of the
    task's dict whose key starts with ``_`` are tensors for a :class:`Critic`, not losses.
    """

    def __init__(self, model, task: Callable, make_batches: Callable, load_batch: Callable,
                 cfg: TrainConfig, out_dir: str | Path, device: str = "cpu",
                 validate: Callable | None = None, params=None, critic: Critic | None = None):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = process_device(device)
        self.rank, self.world = distributed_context(device)
        self.model = model.to(self.device)
        self.wrapped = self.model
        if self.world > 1:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, find_unused_parameters=True)
        self.task, self.make_batches, self.load_batch = task, make_batches, load_batch
        self.validate = validate
        groups = list(params) if params is not None else [{"params": self.model.parameters()}]
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        # a group may carry "lr_scale": its learning rate is the run's times that factor
        groups = [{"params": [p for p in g["params"] if p.requires_grad],
                   "lr": cfg.learning_rate * g.get("lr_scale", 1.0)} for g in groups]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]],
                                           lr=cfg.learning_rate, betas=(0.9, 0.98),
                                           weight_decay=1e-6)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg))
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.critic = critic
        if critic is not None:
            critic.attach(self.device, self.world, self.use_amp)
        self.step, self.epoch, self.position = 0, 0, 0
        self.ckpt_path = self.out_dir / "checkpoints" / "last.pt"

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "step": self.step, "epoch": self.epoch, "position": self.position,
            "rng": torch.get_rng_state(),
            **({"critic": self.critic.state_dict()} if self.critic is not None else {}),
        }

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.ckpt_path, self.state())

    def resume(self) -> None:
        """Restore the run from ``checkpoints/last.pt``. CheckpointError (nothing changed on
        disk) when it is unreadable or belongs to another model, optimizer or run kind."""
        from adavoice.errors import CheckpointError

        state = load_checkpoint(self.ckpt_path)
        if self.critic is not None and isinstance(state, dict) and "critic" not in state:
            # its schedule and warm-up would start mid-run, wrongly
            raise CheckpointError(
                "this checkpoint is from a run without a critic (discriminators)",
                path=self.ckpt_path,
                fix="start the adversarial phase as a new run from the release (--init)")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            self.step, self.epoch, self.position = (state["step"], state["epoch"],
                                                    state["position"])
            torch.set_rng_state(state["rng"])
            if self.critic is not None:
                self.critic.load_state_dict(state["critic"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"checkpoint does not fit this run ({type(exc).__name__}: {str(exc)[:200]})",
                path=self.ckpt_path,
                fix="resume with the same command and preset that wrote it, or train into a "
                    "new --out folder") from exc
        self._truncate_curves()

    def fit(self, resume: bool = False, progress: bool = True) -> list[dict]:
        """``resume`` from ``checkpoints/last.pt`` when it exists, then ``run``; the session's
        wall time is left in ``last_session_wall_s``."""
        if resume and self.ckpt_path.is_file():
            self.resume()
        started = time.perf_counter()
        history = self.run(progress=progress)
        self.last_session_wall_s = round(time.perf_counter() - started, 1)
        return history

    # ---- loop ----------------------------------------------------------------------------
    def train_step(self, batch) -> dict[str, float]:
        self.wrapped.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            losses = self.task(self.wrapped, batch, self.step)
        critic_logs = {}
        if self.critic is not None and self.critic.trains_at(self.step):
            critic_logs = self.critic.update(losses, self.device.type)
            if self.critic.guides_at(self.step):
                terms = self.critic.terms_for_model(losses, self.device.type)
                total = losses["loss"] + sum(self.critic.weights.get(k, 1.0) * v
                                             for k, v in terms.items())
                losses = {**losses, **terms, "loss": total}
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        logs = {k: float(v.detach()) for k, v in losses.items() if not k.startswith("_")}
        if self.critic is not None:  # the same columns from the first step on
            for key in ("critic_loss", "critic_grad_norm", *self.critic.weights):
                logs.setdefault(key, math.nan)
        logs.update(critic_logs)
        logs["grad_norm"] = float(grad_norm)
        logs["lr"] = self.scheduler.get_last_lr()[0]
        return logs

    def run(self, progress: bool = True) -> list[dict]:
        from adavoice.progress import progress_bar

        history: list[dict] = []
        bar = progress_bar(self.cfg.steps, "train", initial=self.step,
                           disable=not progress or self.rank != 0)
        started = time.perf_counter()
        stop = {"requested": False}
        restore = _stop_on_signals(stop)
        try:
            while self.step < self.cfg.steps:
                every = self.make_batches(self.epoch)
                if every and len(every) < self.world:  # a small epoch: each rank gets one
                    every = (every * self.world)[:self.world]
                batches = every[self.rank::self.world]
                if not batches:
                    from adavoice.errors import DatasetError

                    raise DatasetError("an epoch has no batch for this process",
                                       fix="use more data, a smaller batch or fewer processes")
                while self.position < len(batches) and self.step < self.cfg.steps:
                    batch = self.load_batch(batches[self.position])
                    logs = self.train_step(batch)
                    self.position += 1
                    self.step += 1
                    logs["step"] = self.step
                    logs["wall_s"] = time.perf_counter() - started
                    history.append(logs)
                    bar.update(1)
                    bar.set_postfix(loss=f"{logs['loss']:.3f}")
                    self._after_step(logs)
                    if stop["requested"]:
                        raise KeyboardInterrupt  # saved below, at a step boundary
                if self.position >= len(batches):
                    self.epoch, self.position = self.epoch + 1, 0
        except KeyboardInterrupt:
            self.save()
            bar.close()
            raise
        finally:
            restore()
        bar.close()
        self.save()
        self.plot_curves()
        return history

    def _after_step(self, logs: dict) -> None:
        if self.rank != 0:
            return
        if self.step % self.cfg.log_every == 0 or self.step == 1:
            self._append_curve(logs)
        if self.validate is not None and self.step % self.cfg.validate_every == 0:
            val = self.validate(self.model, self.step)
            self._append_curve({"step": self.step, **{f"val_{k}": v for k, v in val.items()}},
                               name="validation.csv")
        if self.step % self.cfg.checkpoint_every == 0:
            self.save()
            self.plot_curves()

    # ---- curves --------------------------------------------------------------------------
    def _append_curve(self, row: dict, name: str = "curves.csv") -> None:
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or path.stat().st_size == 0
        fields = sorted(row)
        if not new:  # keep the file's columns, widened when a row brings new ones (a run
            with path.open(newline="") as fh:  # resumed by a newer adavoice)
                fields = next(csv.reader(fh), None) or fields
            if set(row) - set(fields):
                with path.open(newline="") as fh:
                    old_rows = list(csv.DictReader(fh))
                fields = fields + sorted(set(row) - set(fields))
                part = path.with_name(path.name + ".part")
                with part.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(old_rows)
                os.replace(part, path)
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_curves(self) -> None:
        """Drop curve rows logged after the checkpoint we resume from."""
        for name in ("curves.csv", "validation.csv"):
            path = self.out_dir / name
            if not path.exists():
                continue
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            kept = [r for r in rows if int(float(r["step"])) <= self.step]
            if rows:
                with path.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(kept)

    def plot_curves(self) -> None:
        path = self.out_dir / "curves.csv"
        if self.rank != 0 or not path.exists():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        keys = [k for k in rows[0] if k.endswith("loss") or k.startswith("loss")]
        fig, ax = plt.subplots(figsize=(8, 4))
        steps = [float(r["step"]) for r in rows]
        for key in keys:  # a column a widened file added is empty in its earlier rows
            ax.plot(steps, [float(r[key]) if r.get(key) else math.nan for r in rows],
                    label=key)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.out_dir / "curves.png", dpi=100)
        plt.close(fig)
