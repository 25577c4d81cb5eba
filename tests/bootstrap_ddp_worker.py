"""Run by tests/test_bootstrap.py under torchrun (2 processes, gloo).

``speak MODEL OUT``: each rank speaks its share of five texts, every rank ends with the whole
list. ``bootstrap OUT PAIRED UNPAIRED TEXT INIT``: every rank runs a whole tiny bootstrap."""

import sys
from pathlib import Path

import torch


def _leave() -> None:
    """Both ranks meet, then leave the group: a rank that tears gloo down while the other
    still talks to it can abort at exit (seen once as a SIGABRT of rank 1)."""
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def speak_share(model: str, out: str) -> None:
    from safetensors.torch import save_file

    from adavoice.bootstrap.run import speak
    from adavoice.models.acoustic import AcousticModel

    calls = []
    infer = AcousticModel.infer
    AcousticModel.infer = lambda self, *a, **k: calls.append(1) or infer(self, *a, **k)
    torch.distributed.init_process_group("gloo")
    texts = ["hello", "one two", "three", "a b c", "four"]
    spoken = speak(Path(model), texts, ["one", "two", "one", "two", "one"])
    rank = torch.distributed.get_rank()
    tensors = {f"mel{i}": mel.contiguous() for i, (mel, _) in enumerate(spoken)}
    tensors["spoken_here"] = torch.tensor([len(calls)])  # texts this rank spoke itself
    save_file(tensors, str(Path(out) / f"rank{rank}.safetensors"))
    _leave()


def whole_bootstrap(out: str, paired: str, unpaired: str, text: str, init: str) -> None:
    from adavoice.bootstrap import BootstrapConfig, bootstrap

    bootstrap("cs", Path(out), Path(paired), Path(unpaired), Path(text), init=Path(init),
              config=BootstrapConfig.tiny(), progress=False)  # initialises the group itself
    rank = torch.distributed.get_rank()
    (Path(out) / f"rank{rank}.done").write_text("ok")
    _leave()


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"speak": speak_share, "bootstrap": whole_bootstrap}[sys.argv[1]](*sys.argv[2:])
