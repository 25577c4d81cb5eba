"""Training: data batching, losses, the one training loop, resumable atomic checkpoints."""
