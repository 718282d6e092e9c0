"""Neural audio codecs behind one small interface; Lyra v2 (SoundStream) is the one we ship."""

from soundstorm.runtime.codec.audio import read_wav, to_mono, write_wav
from soundstorm.runtime.codec.base import Codec, CodecError
from soundstorm.runtime.codec.grouping import group_levels, ungroup_levels
from soundstorm.runtime.codec.lyra import LyraCodec, default_codec_dir

__all__ = ["Codec", "CodecError", "LyraCodec", "default_codec_dir", "group_levels",
           "read_wav", "to_mono", "ungroup_levels", "write_wav"]
