"""The pipe tables of models/README.md and models/VIDEO.md."""

from app.evaluation.markdown import table


def test_a_table_is_its_header_a_rule_and_one_line_per_row():
    assert table(["s", "all"], [["0", "0.000"], ["5", "0.990"]]) == (
        "| s | all |\n| --- | --- |\n| 0 | 0.000 |\n| 5 | 0.990 |")
    assert table(["only"], []) == "| only |\n| --- |"
