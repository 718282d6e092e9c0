import pytest

from soundstorm.config import PRESETS, ConfigError, SoundStormConfig, get_preset
from soundstorm.model import param_count


def test_paper_preset_is_the_papers_model():
    config = PRESETS["paper"]
    assert (config.num_layers, config.num_heads, config.model_dim, config.ff_dim,
            config.conv_kernel_size) == (12, 16, 1024, 4096, 5)
    assert (config.num_levels, config.codebook_size, config.frame_rate_hz,
            config.semantic_rate_hz) == (12, 1024, 50, 25)
    assert config.frames_per_semantic_token == 2


def test_paper_preset_has_about_350m_parameters():
    # eval_shape: counted from shapes, nothing allocated.
    assert 340e6 < param_count(PRESETS["paper"]) < 360e6


def test_special_ids_sit_past_the_vocabularies():
    config = PRESETS["tiny"]
    assert config.mask_id == config.codebook_size
    assert config.semantic_unknown_id == config.semantic_vocab_size


def test_every_preset_builds_and_small_is_cpu_sized():
    for name in PRESETS:
        assert get_preset(name) is PRESETS[name]
    assert param_count(PRESETS["small"]) < 20e6
    assert param_count(PRESETS["tiny"]) < 100e3


@pytest.mark.parametrize("changes, message", [
    ({"num_heads": 3}, "divisible by num_heads"),
    ({"model_dim": 48, "num_heads": 16}, "must be even"),
    ({"conv_kernel_size": 4}, "must be odd"),
    ({"frame_rate_hz": 50, "semantic_rate_hz": 20}, "multiple of"),
    ({"num_layers": 0}, "num_layers must be a positive integer"),
    ({"codebook_size": 2.5}, "codebook_size must be a positive integer"),
    ({"compute_dtype": "float16"}, "compute_dtype"),
])
def test_bad_configs_raise_clear_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        SoundStormConfig(**changes)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="paper"):
        get_preset("huge")
