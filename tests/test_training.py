"""Training loop contracts: exact resume after Ctrl-C, atomic checkpoints, curves, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adavoice.errors import CheckpointError
from adavoice.train.acoustic_data import collate_acoustic
from adavoice.train.acoustic_losses import LossWeights, acoustic_losses
from adavoice.train.batching import frame_budget_batches
from adavoice.train.checkpoint import load_checkpoint, save_checkpoint
from adavoice.train.loop import TrainConfig, Trainer
from tests.conftest import make_items, run_model

ITEMS = make_items(seed=1, count=8)


def make_trainer(out: Path, interrupt_at: int | None = None, sigterm_at: int | None = None
                 ) -> Trainer:
    model = AcousticModelWithDropout()
    lengths = [it.mel.shape[1] for it in ITEMS]

    def task(net, batch, step):
        if interrupt_at is not None and step == interrupt_at:
            raise KeyboardInterrupt
        if sigterm_at is not None and step == sigterm_at:
            import signal

            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` does to a background run
        return acoustic_losses(run_model(net, batch), batch, step, LossWeights())

    cfg = TrainConfig(steps=8, warmup_steps=2, max_frames=70, log_every=1,
                      checkpoint_every=100, validate_every=1000)
    return Trainer(model, task, lambda epoch: frame_budget_batches(lengths, 70, 0, epoch),
                   lambda idx: collate_acoustic([ITEMS[i] for i in idx]), cfg, out)


def AcousticModelWithDropout():
    torch.manual_seed(0)
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.acoustic_config import AcousticConfig

    return AcousticModel(AcousticConfig.tiny(n_symbols=10, n_speakers=2, dropout=0.2))


def losses_by_step(out: Path) -> dict[int, float]:
    with (out / "curves.csv").open() as fh:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(fh)}


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path):
    straight = make_trainer(tmp_path / "a")
    straight.run(progress=False)
    expected = losses_by_step(tmp_path / "a")

    interrupted = make_trainer(tmp_path / "b", interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 5
    resumed = make_trainer(tmp_path / "b")
    resumed.resume()
    resumed.run(progress=False)
    got = losses_by_step(tmp_path / "b")
    assert sorted(got) == sorted(expected)
    for step in range(6, 9):
        assert got[step] == pytest.approx(expected[step], rel=1e-5), step
    assert (tmp_path / "a" / "curves.png").is_file()


def test_sigterm_saves_a_checkpoint_and_restores_the_handler(tmp_path):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    trainer = make_trainer(tmp_path, sigterm_at=3)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(progress=False)
    # the signal arrives inside step 4's task; the step completes, then the loop saves
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_epoch_without_batches_is_an_error_not_a_hang(tmp_path):
    from adavoice.errors import DatasetError

    trainer = make_trainer(tmp_path)
    trainer.make_batches = lambda epoch: []
    with pytest.raises(DatasetError, match="no batch"):
        trainer.run(progress=False)


def test_checkpoint_write_is_atomic_and_damage_is_reported(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(2)})
    assert not list(path.parent.glob("*.part"))
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing.pt")


def _free_port() -> int:
    """A port no one listens on now: a fixed one fails when two test runs share a machine."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ddp_two_cpu_processes(tmp_path):
    """torchrun with 2 gloo processes trains the tiny preset and rank 0 writes a checkpoint."""
    script = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()), str(script), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4
    assert "world=2" in result.stdout


def test_a_parameter_group_learns_at_its_scaled_rate(tmp_path):
    model = AcousticModelWithDropout()
    aligner = [p for n, p in model.named_parameters() if n.startswith("aligner")]
    ids = {id(p) for p in aligner}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]},
              {"params": aligner, "lr_scale": 3.0}]
    cfg = TrainConfig(steps=4, warmup_steps=1, learning_rate=1e-3, max_frames=70)
    trainer = Trainer(model, lambda net, batch, step: {}, lambda epoch: [], lambda idx: None,
                      cfg, tmp_path, params=groups)
    rates = [group["initial_lr"] for group in trainer.optimizer.param_groups]
    assert rates == pytest.approx([1e-3, 3e-3])
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(
        list(model.parameters()))


def test_a_curve_file_widens_when_a_row_brings_a_new_column(tmp_path):
    """A run resumed by a newer adavoice, or one a critic joins, may log a loss the file has
    no column for: the file is widened, earlier rows keep their values."""
    trainer = make_trainer(tmp_path)
    trainer._append_curve({"step": 1, "loss": 2.0}, name="validation.csv")
    trainer._append_curve({"step": 2, "loss": 1.5, "new_loss": 9.0}, name="validation.csv")
    trainer._append_curve({"step": 3, "loss": 1.0}, name="validation.csv")
    with (tmp_path / "validation.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows == [["loss", "step", "new_loss"], ["2.0", "1", ""], ["1.5", "2", "9.0"],
                    ["1.0", "3", ""]]
    assert not list(tmp_path.glob("*.part"))
    trainer._append_curve({"step": 1, "loss": 2.0})
    trainer._append_curve({"step": 2, "loss": 1.5, "new_loss": 9.0})
    trainer.plot_curves()  # the widened file's empty cells plot as gaps
    assert (tmp_path / "curves.png").is_file()


@pytest.mark.parametrize("state", [
    [1, 2, 3],  # not a dict
    {"step": 3},  # keys missing
    {"model": {"nope": torch.zeros(1)}, "optimizer": {}, "scheduler": {}, "scaler": {}},
])
def test_resuming_a_checkpoint_of_another_run_is_a_typed_error(tmp_path, state):
    from adavoice.errors import CheckpointError

    trainer = make_trainer(tmp_path)
    save_checkpoint(trainer.ckpt_path, state)
    before = trainer.ckpt_path.read_bytes()
    with pytest.raises(CheckpointError, match="does not fit this run"):
        trainer.fit(resume=True, progress=False)
    assert trainer.ckpt_path.read_bytes() == before  # nothing overwritten
