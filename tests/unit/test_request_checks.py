from __future__ import annotations

import pytest
from litestar.exceptions import ValidationException

from service.schemas import check_texts, check_top_k


def rejected_key(call) -> tuple[str, str]:
    with pytest.raises(ValidationException) as caught:
        call()
    problem = caught.value.extra[0]
    return problem["key"], problem["message"]


def test_valid_texts_pass(settings):
    check_texts("text", ["saw", "hammer"], 2, settings)


def test_too_many_texts_name_the_limit(settings):
    assert rejected_key(lambda: check_texts("text", ["a", "b", "c"], 2, settings)) == (
        "text", "has 3 items; the maximum is 2")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_text_names_its_position(settings, blank):
    assert rejected_key(lambda: check_texts("products", ["saw", blank], 5, settings)) == (
        "products[1]", "must not be empty or only whitespace")


def test_long_text_names_the_limit(settings):
    text = "x" * (settings.max_text_chars + 1)

    assert rejected_key(lambda: check_texts("queries", [text], 5, settings)) == (
        "queries[0]", f"has {len(text)} characters; the maximum is {settings.max_text_chars}")


@pytest.mark.parametrize("top_k", [0, -3, 101])
def test_top_k_out_of_range(settings, top_k):
    assert rejected_key(lambda: check_top_k(top_k, settings)) == (
        "top_k", f"must be between 1 and 100, got {top_k}")


@pytest.mark.parametrize("top_k", [1, 100])
def test_top_k_bounds_pass(settings, top_k):
    check_top_k(top_k, settings)
