from __future__ import annotations

import pytest

from indexer.lexical import LexicalIndex, Tokenizer


@pytest.mark.parametrize(("text", "expected"), [
    ("Milwaukee WM624 drill", ["milwauke", "wm624", "drill"]),
    ("3/8 in. drive", ["3/8", "3", "8", "drive"]),
    ("1-1/2 in. PVC", ["1-1/2", "1", "1", "2", "pvc"]),
    ("2.5 gal. bucket", ["2.5", "2", "5", "gal", "bucket"]),
    ("18-volt M18", ["18-volt", "18", "volt", "m18"]),
    ("a saw for the wood", ["saw", "wood"]),
])
def test_english_tokens_keep_model_numbers_and_sizes(text, expected):
    assert Tokenizer("english").tokenize(text) == expected


def test_words_are_stemmed_but_model_numbers_not():
    tokens = Tokenizer("english").tokenize("Drills drilling DRILL-200s")

    assert tokens[:2] == ["drill", "drill"]
    assert "drill-200s" in tokens


def test_german_uses_its_stemmer_and_stop_words():
    tokens = Tokenizer("german").tokenize("Die Akkuschrauber und Bohrer")

    assert "die" not in tokens
    assert "und" not in tokens
    assert "akkuschraub" in tokens


def test_language_none_only_lowercases():
    assert Tokenizer("none").tokenize("The Drills") == ["the", "drills"]


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError, match="unknown lexical language 'klingon'"):
        Tokenizer("klingon")


def test_index_keeps_positions_of_texts_without_tokens():
    index = LexicalIndex.build(["saw", "...", "hammer"], "english")

    scores = index.scores("hammer")

    assert index.product_count == 3
    assert scores is not None
    assert scores.argmax() == 2
    assert scores[1] == 0


def test_saved_index_loads_with_same_scores(tmp_path):
    index = LexicalIndex.build(["cordless drill", "claw hammer", "drill bit set"], "english")
    written = index.save(tmp_path / "lexical")

    loaded = LexicalIndex.load(tmp_path / "lexical", "english")

    assert written
    assert loaded.scores("drill").tolist() == index.scores("drill").tolist()
