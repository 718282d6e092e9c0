"""Perceived quality without a reference: Microsoft's DNSMOS (P.835 and P.808), via speechmos.

speechmos ships the DNSMOS ONNX models; onnxruntime runs them offline. Scores
are mean opinion scores from 1 (bad) to 5 (excellent): `ovrl` overall, `sig`
speech signal, `bak` background noise, `p808` the P.808 overall rating.
"""

from __future__ import annotations

import numpy as np

DNSMOS_SAMPLE_RATE = 16_000


def dnsmos(waveform: np.ndarray, sample_rate: int) -> dict[str, float]:
    from speechmos import dnsmos as model
    from soundstorm.runtime.codec import to_mono
    audio = to_mono(waveform, sample_rate, DNSMOS_SAMPLE_RATE)
    if audio.size < DNSMOS_SAMPLE_RATE:
        raise ValueError(f"DNSMOS needs at least 1 s of audio, got "
                         f"{audio.size / DNSMOS_SAMPLE_RATE:.2f} s")
    scores = model.run(np.clip(audio, -1.0, 1.0), DNSMOS_SAMPLE_RATE)
    return {"ovrl": float(scores["ovrl_mos"]), "sig": float(scores["sig_mos"]),
            "bak": float(scores["bak_mos"]), "p808": float(scores["p808_mos"])}
