from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.catalog import ColumnMap, load_catalog
from indexer.errors import CatalogError
from tests.conftest import TOOLS


def problems_of(path: Path, **options) -> list[str]:
    return [str(problem) for problem in load_catalog(path, **options).problems]


def test_csv_loads_every_valid_row(write_csv):
    catalog = load_catalog(write_csv(TOOLS))

    assert [product.id for product in catalog.products] == [row[0] for row in TOOLS]
    assert catalog.problems == []
    assert catalog.format == "csv"
    assert len(catalog.checksum) == 64


def test_csv_keeps_fields_and_lines(write_csv):
    product = load_catalog(write_csv(TOOLS)).products[1]

    assert product.title == "Claw Hammer 16 oz"
    assert product.category == "Hand Tools"
    assert product.brand == "Acme"
    assert product.line == 3


def test_text_is_title_then_description(write_csv):
    product = load_catalog(write_csv(TOOLS)).products[0]

    assert product.text("{title}\n{description}") == (
        "Circular Saw 7-1/4 in.\nCorded circular saw that cuts wood, plywood and lumber."
    )


def test_text_without_description_is_title(write_csv):
    product = load_catalog(write_csv([["A", "Hex Key Set", "", "", ""]])).products[0]

    assert product.text("{title}\n{description}") == "Hex Key Set"


def test_invalid_rows_reported_with_line_and_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,title,description\n"
        "A,Saw,cuts\n"
        "B,,no title here\n"
        "A,Another saw,duplicate\n"
        "\n"
        ",Nameless,missing id\n"
        "C,Hammer,drives nails\n",
        encoding="utf-8",
    )

    catalog = load_catalog(path)

    assert [str(problem) for problem in catalog.problems] == [
        "line 3: missing title",
        "line 4: duplicate id 'A', first seen on line 2",
        "line 5: empty row",
        "line 6: missing id",
    ]
    assert [product.id for product in catalog.products] == ["A", "C"]


def test_row_of_empty_cells_is_empty_row(write_csv):
    assert problems_of(write_csv([["", "", "", "", ""]])) == ["line 2: empty row"]


def test_whitespace_title_is_missing(write_csv):
    assert problems_of(write_csv([["A", "   ", "desc", "", ""]])) == ["line 2: missing title"]


def test_title_without_letters_is_empty_text(write_csv):
    assert problems_of(write_csv([["A", "--", "", "", ""]])) == [
        "line 2: empty text: the title has no letters or digits"
    ]


def test_undecodable_bytes_name_the_row(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,title\nA,Saw\nB,S\xe4ge\nC,Hammer\n")

    catalog = load_catalog(path)

    assert [str(problem) for problem in catalog.problems] == [
        "line 3: undecodable bytes (not UTF-8) in column 'title'"
    ]
    assert [product.id for product in catalog.products] == ["A", "C"]


def test_wrong_field_count_is_reported(tmp_path):
    path = tmp_path / "fields.csv"
    path.write_text("id,title\nA,Saw,extra\nB,Hammer\n", encoding="utf-8")

    assert problems_of(path) == ["line 2: has 3 fields, the header has 2"]


def test_quoted_newline_keeps_line_numbers(tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text('id,title,description\nA,Saw,"two\nlines"\nB,,x\n', encoding="utf-8")

    assert problems_of(path) == ["line 4: missing title"]


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,title\nA,Saw\n".encode())

    assert [product.id for product in load_catalog(path).products] == ["A"]


def test_other_columns_become_attributes(write_csv):
    path = write_csv([["A", "Drill", "18V", "Power", "Acme", "cordless", ""]],
                     header=["id", "title", "description", "category", "brand", "power", "color"])

    assert load_catalog(path).products[0].attributes == {"power": "cordless"}


def test_column_map_reads_other_names(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text("product_uid,product_title\n100001,Simpson Strong-Tie 12-Gauge Angle\n",
                    encoding="utf-8")

    catalog = load_catalog(path, ColumnMap.parse("id=product_uid,title=product_title"))

    assert catalog.products[0].id == "100001"
    assert catalog.products[0].title == "Simpson Strong-Tie 12-Gauge Angle"
    assert catalog.products[0].attributes == {}


def test_missing_required_column_fails_whole_file(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text("product_uid,product_title\n1,Saw\n", encoding="utf-8")

    with pytest.raises(CatalogError, match="required column 'id'"):
        load_catalog(path)


@pytest.mark.parametrize("spec, message", [
    ("sku", "expected FIELD=COLUMN"),
    ("price=cost", "unknown field 'price'"),
    ("id=a,id=b", "mapped twice"),
])
def test_column_map_rejects_bad_spec(spec, message):
    with pytest.raises(CatalogError, match=message):
        ColumnMap.parse(spec)


def test_missing_file_fails(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "absent.csv")


def test_unknown_extension_fails(tmp_path):
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(b"x")

    with pytest.raises(CatalogError, match="cannot tell the format"):
        load_catalog(path)


def test_empty_csv_fails(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")

    with pytest.raises(CatalogError, match="expected a header row"):
        load_catalog(path)


def test_jsonl_rows_and_problems(tmp_path):
    path = tmp_path / "catalog.jsonl"
    lines = [
        json.dumps({"id": 17, "title": "Jigsaw", "description": "Cuts curves", "voltage": 18}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "B", "title": 5}),
        json.dumps({"id": "C", "title": "Level 48 in."}),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "D", "title": "S\xe4ge"}\n')

    catalog = load_catalog(path)

    assert [product.id for product in catalog.products] == ["17", "C"]
    assert catalog.products[0].attributes == {"voltage": 18}
    assert [str(problem) for problem in catalog.problems] == [
        "line 2: empty row",
        "line 3: invalid JSON: Expecting property name enclosed in double quotes at column 2",
        "line 4: expected a JSON object",
        "line 5: title must be a string, got int",
        "line 7: undecodable bytes (not UTF-8) at byte 24",
    ]


def test_checksum_changes_with_content(write_csv):
    first = load_catalog(write_csv(TOOLS, name="a.csv")).checksum
    second = load_catalog(write_csv(TOOLS[:-1], name="b.csv")).checksum

    assert first != second


def test_mapped_optional_column_must_exist(write_csv):
    with pytest.raises(CatalogError, match="column 'details', mapped to field description"):
        load_catalog(write_csv(TOOLS), ColumnMap.parse("description=details"))


def test_folder_is_not_a_catalog(tmp_path):
    with pytest.raises(CatalogError, match="is a folder"):
        load_catalog(tmp_path)


def test_truncated_json_names_its_column(tmp_path):
    path = tmp_path / "catalog.jsonl"
    path.write_text('{"id": "A", "title": "Saw"\n', encoding="utf-8")

    assert problems_of(path) == ["line 1: invalid JSON: Expecting ',' delimiter at column 27"]
