"""bench/families.py on the tiny models: the record it writes is the page's measurement, with its machine and load."""

import json

from bench.families import main


def test_a_quick_run_records_the_three_curves(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "families.json"
    assert main(["--quick", "--threads", "1", "--model-dir", str(tiny_model_dir), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["quick"] and record["command"].startswith("python bench/families.py --quick")
    assert {"cpu", "threads", "torch"} <= set(record["machine"]) and set(record["load_average"]) == {"start", "end"}
    assert set(record["models"]) == {"image", "autoregressive", "masked"}
    curves = record["result"]["curves"]
    assert [c["family"] for c in curves] == ["autoregressive", "masked", "diffusion"]
    assert [[p["tokens"] for p in c["points"]] for c in curves] == [[16, 64, 256]] * 3
    assert all(c["architecture"]["served"] for c in curves)
    assert record["result"]["autoregressive"]["verdict"] in ("roughly linear", "faster than linear",
                                                             "slower than linear")
    assert "autoregressive: " in capsys.readouterr().out
