"""Run by test_training.test_ddp_two_cpu_processes under torchrun (2 processes, gloo)."""

import sys
from pathlib import Path

import torch

from adavoice.train.acoustic_data import collate_acoustic
from adavoice.train.acoustic_losses import acoustic_losses
from adavoice.train.batching import frame_budget_batches
from adavoice.train.loop import TrainConfig, Trainer
from tests.test_acoustic import make_items, run_model, tiny_model


def main(out: str) -> None:
    torch.set_num_threads(1)
    items = make_items(seed=2, count=8)
    lengths = [it.mel.shape[1] for it in items]
    trainer = Trainer(
        tiny_model(), lambda net, batch, step: acoustic_losses(run_model(net, batch), batch, step),
        lambda epoch: frame_budget_batches(lengths, 60, 0, epoch),
        lambda idx: collate_acoustic([items[i] for i in idx]),
        TrainConfig(steps=4, warmup_steps=1, log_every=1, checkpoint_every=2), Path(out),
    )
    trainer.run(progress=False)
    # parameters stay identical across ranks: DDP averaged the gradients
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(trainer.world)]
    torch.distributed.all_gather(gathered, flat)
    assert all(torch.allclose(gathered[0], g) for g in gathered), "ranks diverged"
    if trainer.rank == 0:
        print(f"world={trainer.world}")
    torch.distributed.barrier()  # meet before tearing gloo down (a lone rank can abort)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
