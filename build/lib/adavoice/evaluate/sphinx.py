"""An independent English recogniser: CMU PocketSphinx with the US-English acoustic model and
dictionary that ship inside the ``pocketsphinx`` wheel (nothing is downloaded, nothing trained
by adavoice), used to measure intelligibility as a WER ratio.

>>> import numpy as np
>>> recognise = PocketSphinxRecognizer()
>>> isinstance(recognise(np.zeros(16000, np.float32), 16000), str)
True
"""

from __future__ import annotations

import numpy as np

from adavoice.audio import resample
from adavoice.errors import EngineError

SPHINX_RATE_HZ = 16000


class PocketSphinxRecognizer:
    """Callable ``(samples, sample_rate_hz) -> text`` (the evaluate.Recognizer protocol)."""

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EngineError("pocketsphinx is not installed",
                              fix="pip install 'adavoice[eval]'") from exc
        self.decoder = Decoder(samprate=SPHINX_RATE_HZ, loglevel="FATAL")

    def __call__(self, samples: np.ndarray, sample_rate_hz: int) -> str:
        wave = resample(np.asarray(samples, dtype=np.float32), sample_rate_hz, SPHINX_RATE_HZ)
        pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        # The decoder's feature state (cepstral mean and more) carries over from one utterance
        # to the next, so a transcript depended on what was recognised before it (measured:
        # one of six flite:rms sentences read differently). Every call starts afresh.
        self.decoder.reinit_feat()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
