"""Resource use measured in the sandbox, the build's cost from the price
table, and the right-sizing advice: in the record and the summary."""
import json
import re

from conftest import BIN  # noqa: F401  (the binary under test)

MB = 1 << 20


def alloc_spec(mb):
    # bytes * n allocates and writes every page: the resident set is mb
    return f"""version: 0.2
phases:
  build:
    commands:
      - python3 -c "b = b'x' * ({mb} << 20); print(len(b))"
"""


def record_of(cbl, p):
    """build.json: the record with codebuild-local's own "codebuildLocal"
    (BatchGetBuilds answers the service's Build shape, without it)."""
    m = re.search(r"^Record: (\S+)$", p.output, re.M)
    assert m, p.output
    rec = json.loads(open(m.group(1)).read())
    api = json.loads(cbl("batch-get-builds", "--ids", rec["id"], check=0).stdout)["builds"][0]
    assert "codebuildLocal" not in api and api["id"] == rec["id"]
    return rec


def test_memory_peak_within_ten_percent(cbl):
    src = cbl.project("hungry", alloc_spec(400))
    p = cbl("run", src, check=0)
    local = record_of(cbl, p)["codebuildLocal"]
    u = local["resourceUsage"]
    assert abs(u["memoryPeakBytes"] - 400 * MB) <= 40 * MB, u
    assert u["phases"]["BUILD"]["memoryPeakBytes"] >= 400 * MB, u
    assert u["cpuSeconds"] > 0 and u["source"]
    # the default SMALL is the smallest: nothing to advise
    assert "recommendation" not in local, local
    assert local["cost"]["amount"] == 0.005 and local["cost"]["currency"] == "USD"
    assert local["cost"]["priceDate"] and local["cost"]["priceSource"]
    assert re.search(r"^Resources: CPU [0-9.]+ s .* memory peak 4[01][0-9]\.[0-9] MB", p.output, re.M), p.output
    assert re.search(r"^  by phase: BUILD [0-9.]+ s 4[01][0-9]\.[0-9] MB$", p.output, re.M), p.output
    assert "Cost:      0.0050 USD on BUILD_GENERAL1_SMALL" in p.output


def test_peak_near_the_limit_recommends_a_larger_type(cbl):
    # 900 MB of Lambda's 1 GB: over the 85% a build can count on
    src = cbl.project("lambdaful", alloc_spec(900))
    p = cbl("run", "--compute-type", "BUILD_LAMBDA_1GB", src, check=0)
    local = record_of(cbl, p)["codebuildLocal"]
    u = local["resourceUsage"]
    assert abs(u["memoryPeakBytes"] - 900 * MB) <= 90 * MB, u
    rec = local["recommendation"]
    assert rec["computeType"] == "BUILD_LAMBDA_2GB", rec
    assert rec["reason"] == "peaked at 0.9 GB of BUILD_LAMBDA_1GB's 1 GB: BUILD_LAMBDA_2GB"
    assert "Right-size: peaked at 0.9 GB of BUILD_LAMBDA_1GB's 1 GB: BUILD_LAMBDA_2GB" in p.output
    # no price was published for Lambda here: said, not invented
    assert local["cost"]["amount"] is None and "no price" in local["cost"]["reason"]


def test_idle_large_build_recommends_small(cbl):
    src = cbl.project("idle", alloc_spec(50))
    p = cbl("run", "--compute-type", "BUILD_GENERAL1_LARGE", src, check=0)
    local = record_of(cbl, p)["codebuildLocal"]
    rec = local["recommendation"]
    assert rec["computeType"] == "BUILD_GENERAL1_SMALL", rec
    assert rec["reason"].endswith("of 15 GB: BUILD_GENERAL1_SMALL would cost 4x less"), rec
    assert re.match(r"used [0-9.]+ of 8 vCPUs, peaked at 0\.[0-9] GB", rec["reason"]), rec
    assert local["cost"]["amount"] == 0.02


def test_price_table_override_and_its_errors(cbl, tmp_path):
    src = cbl.project("priced", alloc_spec(1))
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({
        "source": "a test's own table", "date": "2030-01", "currency": "EUR",
        "computeTypes": {"BUILD_GENERAL1_SMALL": {"price": 0.25, "unit": "second"}}}))
    p = cbl("run", src, env={"CODEBUILD_LOCAL_PRICES": str(table)}, check=0)
    cost = record_of(cbl, p)["codebuildLocal"]["cost"]
    # a started second is billed whole: at least one
    assert cost["amount"] >= 0.25 and cost["currency"] == "EUR", cost
    assert cost["priceSource"] == "a test's own table" and cost["priceDate"] == "2030-01"
    table.write_text('{"computeTypes": {"BUILD_GENERAL1_SMALL": {"price": "cheap", "unit": "minute"}}}')
    p = cbl("run", src, env={"CODEBUILD_LOCAL_PRICES": str(table)}, check=0)
    cost = record_of(cbl, p)["codebuildLocal"]["cost"]
    assert "computeTypes.BUILD_GENERAL1_SMALL: \"price\" must be a number" in cost["error"], cost
    assert "Cost:      unknown: " in p.output
    table.write_text('{"computeTypes": ')
    p = cbl("run", src, env={"CODEBUILD_LOCAL_PRICES": str(table)}, check=0)
    cost = record_of(cbl, p)["codebuildLocal"]["cost"]
    assert cost["error"].startswith(f"{table}:1:"), cost
    # a table that cannot be opened: the reason, no jansson -1:-1 position
    missing = tmp_path / "none.json"
    p = cbl("run", src, env={"CODEBUILD_LOCAL_PRICES": str(missing)}, check=0)
    cost = record_of(cbl, p)["codebuildLocal"]["cost"]
    assert cost["error"] == f"CODEBUILD_LOCAL_PRICES: cannot open '{missing}': No such file or directory", cost


def test_the_builds_peak_is_at_least_its_phases(cbl, tmp_path):
    """A file the host has read is in the page cache, charged to the host's
    cgroup: a build that maps it has it in its resident set (the phase's
    figure, wait4's ru_maxrss) but a memory cgroup is not charged for it (the
    build's, with --compute-type): the build's peak must still be at least
    the phase's, and say which count it is."""
    src = cbl.project("mapper", """version: 0.2
phases:
  build:
    commands:
      - python3 -c "import mmap; f = open('big.bin', 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); print(sum(m[i] for i in range(0, len(m), 4096)))"
      - head -c 20000000 /dev/zero > /codebuild/output/tmp/w.bin
""")
    with open(src / "big.bin", "wb") as f:
        f.write(b"\1" * (120 * MB))
    (src / "big.bin").read_bytes()  # in the host's page cache
    p = cbl("run", "--compute-type", "BUILD_GENERAL1_SMALL", src, check=0)
    assert p.returncode == 0, p.output
    u = record_of(cbl, p)["codebuildLocal"]["resourceUsage"]
    ph = u["phases"]["BUILD"]
    assert ph["memoryPeakBytes"] >= 110 * MB, u  # the mapping was resident
    assert u["memoryPeakBytes"] >= ph["memoryPeakBytes"], u
    assert u["memoryPeakSource"] in ("cgroup v2 memory.peak", "cgroup v1 memory.max_usage_in_bytes",
                                     "process tree ru_maxrss"), u
    if u["memoryPeakBytes"] > ph["memoryPeakBytes"]:
        assert u["memoryPeakSource"].startswith("cgroup"), u
    # written: counted when written into the page cache of a disk's file system, not
    # when flushed (nothing syncs here); the build's at least the sum of its phases'
    assert ph["writeBytes"] >= 20 * 1000 * 1000, u
    assert u["writeBytes"] >= ph["writeBytes"] and u["cpuSeconds"] >= ph["cpuSeconds"], u
    m = re.search(r"memory peak ([0-9.]+) MB", p.output)
    assert m and float(m.group(1)) >= 110, p.output
