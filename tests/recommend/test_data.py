"""Loading interaction logs and item side data; bad input names the row and the column."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nearspace.errors import InputError
from nearspace.recommend.data import load_interactions, load_items
from tests.recommend.conftest import interactions, write_log

ROWS = [("1", "10", 5, 881250949), ("1", "20", 3, 881250950), ("2", "10", 4, 881250951)]


def _same(a, b) -> None:
    assert a.user_ids == b.user_ids and a.item_ids == b.item_ids
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_allclose(a.weights, b.weights)


def test_movielens_u_data_layout_loads_without_options(tmp_path):
    data = load_interactions(write_log(tmp_path / "u.data", ROWS, header=None, sep="\t"))
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert data.value_kind == "rating" and data.user_ids == ["1", "2"]
    np.testing.assert_allclose(data.weights, [5, 3, 4])
    np.testing.assert_allclose(data.timestamps, [881250949, 881250950, 881250951])


@pytest.mark.parametrize("header,kind", [("user,item,weight", "weight"), ("userId,movieId,rating", "rating"),
                                         ("user_id,item_id,rating,timestamp", "rating")])
def test_header_names_are_recognised(tmp_path, header, kind):
    width = len(header.split(","))
    data = load_interactions(write_log(tmp_path / "log.csv", [r[:width] for r in ROWS], header=header))
    assert data.value_kind == kind and len(data) == 3
    assert (data.timestamps is not None) == header.endswith("timestamp")


def test_csv_tsv_jsonl_and_parquet_give_the_same_interactions(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = interactions(users=12)
    csv = load_interactions(write_log(tmp_path / "a.csv", rows))
    tsv = load_interactions(write_log(tmp_path / "a.tsv", rows, header="user\titem\trating\ttimestamp", sep="\t"))
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({"user": u, "item": i, "rating": r, "timestamp": t})
                               for u, i, r, t in rows))
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"user": [r[0] for r in rows], "item": [r[1] for r in rows],
                             "rating": [float(r[2]) for r in rows], "timestamp": [r[3] for r in rows]}), parquet)
    for other in (tsv, load_interactions(jsonl), load_interactions(parquet)):
        _same(csv, other)


def test_explicit_column_mapping_and_iso_dates(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("who,what,plays,when\na,x,3,2020-01-02T10:00:00Z\nb,x,1,2020-01-01\n")
    data = load_interactions(path, user="who", item="what", weight="plays", timestamp="when")
    assert data.value_kind == "weight" and data.user_ids == ["a", "b"]
    assert data.timestamps[0] > data.timestamps[1]


def test_columns_name_a_headerless_file(tmp_path):
    path = write_log(tmp_path / "log.txt", [("u1", "i1", 100), ("u2", "i1", 200)], header=None)
    data = load_interactions(path, columns=["user", "item", "timestamp"])
    assert data.value_kind is None and data.timestamps is not None
    np.testing.assert_allclose(data.weights, [1, 1])


def test_plain_log_counts_repeats_but_repeated_ratings_are_refused(tmp_path):
    log = load_interactions(write_log(tmp_path / "clicks.csv", [("a", "x"), ("a", "x"), ("a", "y")],
                                      header="user,item"))
    assert len(log) == 2 and log.merged == 1
    np.testing.assert_allclose(log.weights, [2, 1])
    path = write_log(tmp_path / "ratings.csv", [("a", "x", 4), ("b", "x", 2), ("a", "x", 5)], header="user,item,rating")
    with pytest.raises(InputError, match=r"ratings.csv row 4, column 'rating': user 'a' and item 'x' already appear "
                                         r"at row 2"):
        load_interactions(path)
    assert load_interactions(path, duplicates="last").weights[0] == 5
    assert load_interactions(path, duplicates="max").weights[0] == 5
    assert load_interactions(path, duplicates="sum").weights[0] == 9


@pytest.mark.parametrize("value,message", [
    ("-1", r"row 3, column 'rating': negative rating '-1'"),
    ("", r"row 3, column 'rating': missing rating"),
    ("NaN", r"row 3, column 'rating': missing rating"),
    ("good", r"row 3, column 'rating': rating 'good' is not a number"),
    ("inf", r"row 3, column 'rating': rating is infinite"),
])
def test_bad_ratings_name_row_and_column(tmp_path, value, message):
    path = tmp_path / "r.csv"
    path.write_text(f"user,item,rating\na,x,4\nb,y,{value}\n")
    with pytest.raises(InputError, match=message):
        load_interactions(path)


def test_missing_ids_short_rows_and_bad_timestamps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\na,x,4\n,y,3\n")
    with pytest.raises(InputError, match=r"row 3, column 'user': missing user id"):
        load_interactions(path)
    path.write_text("user,item,rating,timestamp\na,x,4,1\nb,y,3\n")
    with pytest.raises(InputError, match=r"row 3: expected 4 columns"):
        load_interactions(path)
    path.write_text("user,item,rating,timestamp\na,x,4,yesterday\n")
    with pytest.raises(InputError, match=r"row 2, column 'timestamp': cannot read timestamp 'yesterday'"):
        load_interactions(path)


def test_wrong_columns_are_listed(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("customer_name,product_name,qty\nann,tea,3\n")
    with pytest.raises(InputError, match=r"no user or item column among its columns \(customer_name, product_name, "
                                         r"qty\)"):
        load_interactions(path)
    with pytest.raises(InputError, match=r"no column 'stars' for the rating"):
        load_interactions(path, user="customer_name", item="product_name", rating="stars")
    data = load_interactions(path, user="customer_name", item="product_name", weight="qty")
    assert data.user_ids == ["ann"] and data.weights[0] == 3


def test_movielens_u_item_latin1_with_genres(tmp_path):
    path = tmp_path / "u.item"
    flags = ["0"] * 19
    flags[3], flags[5] = "1", "1"   # Animation, Comedy
    line = "|".join(["7", "Caf\xe9 (1995)", "01-Jan-1995", "", "http://x"] + flags)
    path.write_bytes((line + "\n").encode("latin-1"))
    items = load_items(path)
    assert items.ids == ["7"] and items.titles == ["Caf\xe9 (1995)"]
    assert items.metadatas[0]["genres"] == ["Animation", "Comedy"] and items.metadatas[0]["year"] == 1995
    assert "Genres: Animation, Comedy." in items.texts[0]


def test_item_csv_with_descriptions_and_extra_metadata(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("movieId,title,genres,description,studio\n1,Heat (1995),Action|Crime,A heist goes wrong.,WB\n"
                    "1,Dup,Drama,,X\n")
    with pytest.raises(InputError, match=r"items.csv row 3, column 'movieId': item '1' already described at row 2"):
        load_items(path)
    path.write_text("movieId,title,genres,description,studio\n1,Heat (1995),Action|Crime,A heist goes wrong.,WB\n")
    items = load_items(path)
    assert items.metadatas[0] == {"year": 1995, "genres": ["Action", "Crime"], "studio": "WB"}
    assert items.texts[0] == "Genres: Action, Crime. A heist goes wrong."
