"""The Lyra v2 codec: round trip quality, token shapes and ranges, state, grouping, errors."""

import io
import shutil

import numpy as np
import pytest

from soundstorm.runtime.codec import CodecError, LyraCodec, group_levels, to_mono, ungroup_levels
from soundstorm.runtime.codec.fetch import fetch
from soundstorm.runtime.codec.lyra import LYRA_SHA256, default_codec_dir
from soundstorm.apps.evaluation import mel_cepstral_distortion

RATE = 16_000


def test_tokens_have_one_row_per_20ms_frame_and_lie_in_range(lyra, speech):
    tokens = lyra.encode(speech[0], RATE)
    assert tokens.dtype == np.int32
    assert tokens.shape == (-(-len(speech[0]) // 320), lyra.num_levels)
    assert tokens.min() >= 0 and tokens.max() < lyra.codebook_size
    # Real speech uses much of each codebook, not a constant.
    assert len(np.unique(tokens[:, 0])) > lyra.codebook_size // 8


def test_round_trip_keeps_the_speech_recognisably_the_same(lyra, speech):
    decoded = lyra.decode(lyra.encode(speech[0], RATE))
    assert decoded.dtype == np.float32 and len(decoded) >= len(speech[0])
    round_trip = mel_cepstral_distortion(speech[0], decoded, RATE)
    other_sentence = mel_cepstral_distortion(speech[0], speech[1], RATE)
    # Measured: about 21 for the round trip, 60+ for a different sentence.
    assert round_trip < 30
    assert round_trip < 0.5 * other_sentence


def test_more_levels_give_a_closer_round_trip(speech):
    distortion = {}
    for levels in (8, 46):
        codec = LyraCodec(lyra_levels=levels, group_size=1)
        distortion[levels] = mel_cepstral_distortion(
            speech[0], codec.decode(codec.encode(speech[0], RATE)), RATE)
    assert distortion[46] < distortion[8] - 3


def test_each_stream_starts_from_fresh_state(lyra, speech):
    first = lyra.encode(speech[0], RATE)
    lyra.encode(speech[1], RATE)  # leaves state behind in a stateful encoder
    assert np.array_equal(lyra.encode(speech[0], RATE), first)
    assert np.array_equal(LyraCodec().encode(speech[0], RATE), first)
    tokens = first[:50]
    assert np.array_equal(lyra.decode(tokens), lyra.decode(tokens))


def test_grouped_tokens_are_the_same_lyra_codes(speech):
    pairs = LyraCodec(lyra_levels=16, group_size=2).encode(speech[0], RATE)
    singles = LyraCodec(lyra_levels=16, group_size=1).encode(speech[0], RATE)
    assert pairs.shape[1] == 8 and singles.shape[1] == 16
    assert np.array_equal(pairs, singles[:, 0::2] * 16 + singles[:, 1::2])
    assert np.array_equal(ungroup_levels(pairs, 2, 16), singles)


@pytest.mark.parametrize("group_size, levels", [(1, 46), (2, 16), (3, 30), (5, 30)])
def test_grouping_round_trips_exactly(group_size, levels, rng):
    codes = rng.integers(0, 16, (40, levels)).astype(np.int32)
    grouped = group_levels(codes, group_size, 16)
    assert grouped.shape == (40, levels // group_size)
    assert grouped.max() < 16 ** group_size
    assert np.array_equal(ungroup_levels(grouped, group_size, 16), codes)


def test_audio_of_any_rate_channel_count_and_sample_format_becomes_16k_mono():
    seconds, tone_hz = 0.5, 1000.0
    time_48k = np.arange(int(48_000 * seconds)) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * tone_hz * time_48k)).astype(np.float32)
    stereo_int16 = np.stack([tone, tone], axis=1)
    stereo_int16 = np.round(stereo_int16 * 32767).astype(np.int16)
    converted = to_mono(stereo_int16, 48_000, RATE)
    assert converted.dtype == np.float32 and converted.shape == (int(RATE * seconds),)
    spectrum = np.abs(np.fft.rfft(converted))
    assert np.argmax(spectrum) * RATE / len(converted) == pytest.approx(tone_hz, abs=2)
    assert np.abs(converted).max() == pytest.approx(0.5, abs=0.01)
    assert np.array_equal(to_mono(np.full(4, 128, np.uint8), RATE, RATE), np.zeros(4, np.float32))


@pytest.mark.parametrize("waveform, rate, message", [
    (np.zeros(320, np.complex64), RATE, "sample format"),
    (np.array(["a", "b"]), RATE, "sample format"),
    (np.zeros((2, 16000), np.float32), RATE, "channels, samples"),
    (np.zeros((1, 2, 3), np.float32), RATE, "shape"),
    (np.array([0.0, np.nan], np.float32), RATE, "NaN"),
    (np.zeros(0, np.float32), RATE, "empty"),
    (np.zeros(320, np.float32), 0, "sample_rate"),
])
def test_bad_audio_is_refused_by_name(lyra, waveform, rate, message):
    with pytest.raises(CodecError, match=message):
        lyra.encode(waveform, rate)


@pytest.mark.parametrize("tokens, message", [
    (np.zeros((10, 8), np.float32), "integers"),
    (np.zeros((10, 7), np.int32), r"shape \[frames, 8\]"),
    (np.full((10, 8), 256, np.int32), "out of range"),
    (np.full((10, 8), -1, np.int32), "out of range"),
])
def test_bad_tokens_are_refused_by_name(lyra, tokens, message):
    with pytest.raises(CodecError, match=message):
        lyra.decode(tokens)


def test_missing_or_corrupt_model_files_are_named(tmp_path, monkeypatch):
    import grpc
    with pytest.raises(CodecError, match="soundstream_encoder.tflite") as missing:
        LyraCodec(tmp_path)
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    for name in LYRA_SHA256:
        shutil.copy(default_codec_dir() / name, tmp_path / name)
    (tmp_path / "lyragan.tflite").write_bytes(b"not a model")
    with pytest.raises(CodecError, match="lyragan.tflite has sha256") as corrupt:
        LyraCodec(tmp_path)
    assert corrupt.value.code == grpc.StatusCode.DATA_LOSS
    monkeypatch.setenv("SOUNDSTORM_CODEC_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(CodecError, match="nowhere"):
        LyraCodec()


@pytest.mark.parametrize("levels, group_size", [(0, 1), (47, 1), (16, 3), (16, 0)])
def test_bad_codec_settings_are_refused(levels, group_size):
    with pytest.raises(CodecError):
        LyraCodec(lyra_levels=levels, group_size=group_size)


def _local_opener(corrupt=()):
    """Stands in for the network: serves the shared files by name."""
    def opener(url, timeout):
        name = url.rsplit("/", 1)[1]
        data = (default_codec_dir() / name).read_bytes()
        return io.BytesIO(b"corrupted" if name in corrupt else data)
    return opener


def test_fetch_writes_checked_files_and_refuses_a_bad_download(tmp_path):
    paths = fetch(tmp_path / "good", opener=_local_opener())
    assert sorted(path.name for path in paths) == sorted(LYRA_SHA256)
    LyraCodec(tmp_path / "good")  # checksums verified on load
    with pytest.raises(CodecError, match="quantizer.tflite has sha256"):
        fetch(tmp_path / "bad", opener=_local_opener(corrupt={"quantizer.tflite"}))
    assert not (tmp_path / "bad" / "quantizer.tflite").exists()
    assert not list((tmp_path / "bad").glob("*.partial"))


def test_fetch_without_a_network_is_unavailable_and_says_what_to_do(tmp_path):
    import urllib.error

    import grpc

    def offline(url, timeout):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))
    with pytest.raises(CodecError) as raised:
        fetch(tmp_path / "codec", opener=offline)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE  # the CLI's exit 4, not bad input
    assert "Name or service not known" in raised.value.message
    assert f"into {tmp_path / 'codec'} or point SOUNDSTORM_CODEC_DIR" in raised.value.message
    assert not list((tmp_path / "codec").iterdir())
