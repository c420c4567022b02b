"""`codebuild-local metrics`: the stored builds in figures, from SQL over
the store (counts, success rate, duration percentiles, cost, trend)."""
import json

from conftest import BIN  # noqa: F401


def build(cbl, name, ok, sleep="0"):
    src = cbl.project(name, f"""version: 0.2
phases:
  build:
    commands:
      - sleep {sleep}
      - {'true' if ok else 'false'}
""")
    cbl("run", src, check=0 if ok else 1)


def test_metrics_counts_rates_percentiles_and_cost(cbl):
    build(cbl, "alpha", True)
    build(cbl, "alpha", True, "0.3")
    build(cbl, "alpha", False)
    build(cbl, "beta", True)
    p = cbl("metrics", "--since", "1h", "--period", "5m", "--json", check=0)
    m = json.loads(p.stdout)
    assert (m["builds"], m["succeeded"], m["failed"], m["other"]) == (4, 3, 1, 0), m
    assert m["successRate"] == 0.75
    # four builds shorter than a minute on SMALL: a billed minute each
    assert abs(m["cost"] - 4 * 0.005) < 1e-9 and m["pricedBuilds"] == 4
    d = m["durationMs"]
    assert d["TOTAL"]["count"] == 4 and d["BUILD"]["count"] == 4
    assert d["BUILD"]["max"] >= 300 and d["BUILD"]["p95"] == d["BUILD"]["max"]
    assert d["BUILD"]["p50"] < 300
    assert sum(x["builds"] for x in m["periods"]) == 4
    assert {x["project"]: x["builds"] for x in m["projects"]} == {"alpha": 3, "beta": 1}
    one = json.loads(cbl("metrics", "--project", "alpha", "--json", check=0).stdout)
    assert (one["builds"], one["failed"]) == (3, 1)
    text = cbl("metrics", "--since", "2h", check=0).stdout
    assert "builds 4   succeeded 3   failed 1   other 0   success rate 75.0%" in text, text
    assert "  BUILD " in text and "Trend" in text and "alpha" in text


def test_metrics_bad_arguments(cbl):
    p = cbl("metrics", "--since", "7x", check=2)
    assert "--since '7x': want N followed by s, m, h, d or w" in p.stderr
    p = cbl("metrics", "--period", "0h", check=2)
    assert "--period '0h'" in p.stderr
    empty = json.loads(cbl("metrics", "--json", check=0).stdout)
    assert empty["builds"] == 0 and empty["successRate"] is None
