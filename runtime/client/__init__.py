"""Client library: text or semantic tokens + a voice prompt -> speech, embedded or over gRPC.

Nothing here imports JAX: the model runs in TensorFlow (embedded) or behind a
TF Serving endpoint. See docs/client.md.
"""

from soundstorm.runtime.client.client import Client, Synthesis, Timings
from soundstorm.runtime.client.errors import ClientError
from soundstorm.runtime.client.prompt import VoicePrompt, parse_transcript, read_audio, write_audio

__all__ = ["Client", "ClientError", "Synthesis", "Timings", "VoicePrompt", "parse_transcript",
           "read_audio", "write_audio"]
