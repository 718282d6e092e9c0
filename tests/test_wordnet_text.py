"""Open-vocabulary text: WordNet's example sentences and the held-out split."""

import pytest

from soundstorm.runtime.frontend.text_check import check_text
from soundstorm.config import ConfigError
from soundstorm.apps.corpus.build import CorpusConfig, split_texts
from soundstorm.apps.corpus.wordnet_text import example_sentences, split_open_vocabulary, words


@pytest.fixture(scope="module")
def sentences():
    return example_sentences()


def test_wordnet_gives_tens_of_thousands_of_speakable_sentences(sentences):
    assert len(sentences) > 25_000
    assert len({word for text in sentences for word in words(text)}) > 20_000
    assert len(set(sentences)) == len(sentences)
    for text in sentences[::97]:
        check_text(text)  # the frontend accepts every one
        assert text[-1] in ".!?"
        assert 5 <= len(words(text)) <= 20


def test_held_out_words_never_occur_in_training_text(sentences):
    split = split_open_vocabulary(sentences, 64, seed=0)
    train_words = {word for text in split.train for word in words(text)}
    assert len(split.heldout) == 64 and len(train_words) > 20_000
    assert not set(split.heldout) & set(split.train)
    assert all(text[0].isupper() and 6 <= len(words(text)) <= 16 for text in split.heldout)
    for text in split.heldout:
        unseen = [word for word in words(text) if word not in train_words]
        assert len(unseen) >= 0.25 * len(words(text)), text
    assert split.novel_words and not split.novel_words & train_words
    # Only sentences sharing a novel word (each in at most 20) are dropped from training.
    assert len(split.train) >= len(sentences) - 64 - 20 * len(split.novel_words)


def test_the_corpus_takes_its_text_split_from_wordnet():
    heldout, train = split_texts(CorpusConfig(num_sentences=500, num_heldout_sentences=48))
    assert len(heldout) == 48 and len(train) == 500
    train_words = {word for _, text in train for word in words(text)}
    novel = sum(word not in train_words for _, text in heldout for word in words(text))
    assert novel >= 0.25 * sum(len(words(text)) for _, text in heldout)
    # Held-out sentences do not move when the training text grows.
    assert split_texts(CorpusConfig(num_sentences=900, num_heldout_sentences=48))[0] == heldout


def test_asking_for_more_than_the_source_holds_is_refused(sentences):
    with pytest.raises(ConfigError, match="held-out"):
        # Common words only: no sentence has uncommon words to hold out.
        split_open_vocabulary(["The dog saw the cat and the bird."] * 30, 1, seed=0)
    with pytest.raises(ConfigError, match="WordNet has"):
        split_texts(CorpusConfig(num_sentences=10 ** 6))


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        example_sentences(tmp_path)
