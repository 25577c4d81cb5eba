"""LRSpeech for a new language (DESIGN §7): make its language pack from text
(:mod:`adavoice.bootstrap.pack`), then fine-tune, dual transformation and distillation
(:mod:`adavoice.bootstrap.run`), reported per stage (:mod:`adavoice.bootstrap.report`)."""

from adavoice.bootstrap.run import Bootstrap, BootstrapConfig, bootstrap

__all__ = ["Bootstrap", "BootstrapConfig", "bootstrap"]
