"""Run by test_bootstrap.test_batch_synthesis_shards_across_torchrun_workers under torchrun
(2 processes, gloo): each rank speaks its share, every rank ends with the whole list."""

import sys
from pathlib import Path

import torch


def main(model: str, out: str) -> None:
    from safetensors.torch import save_file

    from adavoice.bootstrap.run import speak
    from adavoice.models.acoustic import AcousticModel

    calls = []
    infer = AcousticModel.infer
    AcousticModel.infer = lambda self, *a, **k: calls.append(1) or infer(self, *a, **k)
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    texts = ["hello", "one two", "three", "a b c", "four"]
    spoken = speak(Path(model), texts, ["one", "two", "one", "two", "one"])
    rank = torch.distributed.get_rank()
    tensors = {f"mel{i}": mel.contiguous() for i, (mel, _) in enumerate(spoken)}
    tensors["spoken_here"] = torch.tensor([len(calls)])  # texts this rank spoke itself
    save_file(tensors, str(Path(out) / f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
