"""The dashboard's resource-use table and batch pages in a real headless
Chromium (like test_dashboard.py): a build run with --compute-type shows its
CPU, peak memory and I/O per phase, its cost and the right-sizing advice from
build.json's codebuildLocal (which the API copy never has); a build-graph
batch started into the same state directory is listed on its project's page
and its page shows the builds level by level with their dependencies,
statuses and links, navigable with the keyboard.  Screenshots go to
<build dir>/screenshots/."""
import json
import re
import time

import pytest

from conftest import Runner
from test_dashboard import CHROMIUM, DRIVER, MISSING, NO_BROWSER, Serve, get, shot

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # pragma: no cover - MISSING says why
    pass

HUNGRY = """version: 0.2
phases:
  install:
    commands:
      - echo installing
  build:
    commands:
      - python3 -c "b = bytearray(120 * 1024 * 1024); print(len(b))"
      - head -c 3000000 /dev/zero > written.bin
"""

GRAPH = """version: 0.2
batch:
  build-graph:
    - identifier: first
    - identifier: second
      depend-on: [first]
    - identifier: breaks
      depend-on: [first]
      env:
        variables:
          FAIL: "yes"
    - identifier: last
      depend-on: [second, breaks]
phases:
  build:
    commands:
      - echo "$CODEBUILD_BATCH_BUILD_IDENTIFIER ran"
      - test -z "$FAIL"
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashb")
    home = tmp / "state"
    home.mkdir()
    cbl = Runner(home, tmp)
    serve = Serve(home, tmp)
    yield cbl, serve
    assert serve.stop() == 0


@pytest.fixture(scope="module")
def browser(env):
    if MISSING:
        pytest.skip(NO_BROWSER)
    _, serve = env
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1000", "--no-proxy-server", "--disable-extensions"]:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(30)
    d.get(serve.login)
    assert d.current_url == serve.url + "/", d.current_url
    yield d
    d.quit()


def test_build_page_shows_resource_use_cost_and_advice(env, browser):
    cbl, serve = env
    src = cbl.project("hungry", HUNGRY)
    p = cbl("run", "--compute-type", "BUILD_GENERAL1_LARGE", src, check=0)
    m = re.search(r"^Record: (\S+)$", p.output, re.M)
    assert m, p.output
    rec = json.loads(open(m.group(1)).read())
    local = rec["codebuildLocal"]
    assert local["recommendation"]["computeType"] == "BUILD_GENERAL1_SMALL", local
    d = browser
    d.get(serve.url + "/builds/" + rec["id"])
    table = d.find_element(By.ID, "usage")
    rows = {r.get_attribute("data-phase"): r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert {"Whole build", "INSTALL", "BUILD"} <= set(rows), list(rows)
    cells = rows["Whole build"].find_elements(By.TAG_NAME, "td")
    assert float(cells[0].text) == pytest.approx(local["resourceUsage"]["cpuSeconds"], abs=0.006)
    peak = int(cells[1].get_attribute("data-bytes"))
    assert peak == local["resourceUsage"]["memoryPeakBytes"] and peak >= 120 * 1024 * 1024
    assert cells[1].text.endswith(" MB")
    written = rows["BUILD"].find_elements(By.TAG_NAME, "td")[3]
    assert int(written.get_attribute("data-bytes")) == local["resourceUsage"]["phases"]["BUILD"]["writeBytes"]
    assert re.fullmatch(r"[0-9]+\.[0-9] [KMG]?B", written.text), written.text
    cost = d.find_element(By.ID, "cost").text
    assert cost.startswith("%.4f USD on BUILD_GENERAL1_LARGE" % local["cost"]["amount"]), cost
    advice = d.find_element(By.ID, "advice").text
    assert advice == "BUILD_GENERAL1_SMALL: " + local["recommendation"]["reason"], advice
    d.execute_script("arguments[0].scrollIntoView()", table)
    shot(d, "build-resources")


def test_batch_graph_page_and_the_project_list(env, browser):
    cbl, serve = env
    src = cbl.project("graph", GRAPH)
    cbl("create-project", "--name", "graphs", "--source", f"type=NO_SOURCE,location=file://{src}",
        "--artifacts", "type=NO_ARTIFACTS",
        "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL", check=0)
    b = json.loads(cbl("start-build-batch", "--project-name", "graphs", check=0).stdout)["buildBatch"]
    deadline = time.time() + 120
    while not b["complete"] and time.time() < deadline:
        time.sleep(0.2)
        b = json.loads(cbl("batch-get-build-batches", "--ids", b["id"], check=0).stdout)["buildBatches"][0]
    assert b["buildBatchStatus"] == "FAILED", json.dumps(b["phases"])
    g = {x["identifier"]: x for x in b["buildGroups"]}
    d = browser
    # the project's page lists it, linked
    d.get(serve.url + "/projects/graphs")
    link = d.find_element(By.CSS_SELECTOR, "#batches a.batch")
    assert link.text == "#%d" % b["buildBatchNumber"]
    shot(d, "project-batches")
    link.click()
    assert d.current_url == serve.url + "/batches/" + b["id"], d.current_url
    assert "FAILED" in d.find_element(By.ID, "batch-status").text
    levels = {}
    for row in d.find_elements(By.CSS_SELECTOR, "#batch-graph tbody tr"):
        levels[int(row.get_attribute("data-level"))] = [
            li.get_attribute("data-identifier") for li in row.find_elements(By.CSS_SELECTOR, "li.group")]
    assert levels == {0: ["first"], 1: ["second", "breaks"], 2: ["last"]}, levels
    # drawn too: a node per build, an edge per dependency
    svg = d.find_element(By.ID, "batch-svg")
    assert [t.text for t in svg.find_elements(By.TAG_NAME, "text")] == ["first", "second", "breaks", "last"]
    assert len(svg.find_elements(By.CSS_SELECTOR, "line.edge")) == 4
    assert "st-FAILED" in svg.find_elements(By.TAG_NAME, "rect")[2].get_attribute("class")
    for ident in ["first", "second", "breaks"]:
        li = d.find_element(By.ID, "g-" + ident)
        want = g[ident]["currentBuildSummary"]["buildStatus"]
        assert li.find_element(By.CSS_SELECTOR, ".st").text == want
        href = li.find_element(By.CSS_SELECTOR, "a.group-build").get_attribute("href")
        assert href == serve.url + "/builds/" + g[ident]["currentBuildSummary"]["arn"].split(":build/")[1]
    assert g["breaks"]["currentBuildSummary"]["buildStatus"] == "FAILED"
    # never started: no link, said so; its dependencies link to their entries
    last = d.find_element(By.ID, "g-last")
    assert not last.find_elements(By.CSS_SELECTOR, "a.group-build")
    assert "NOT_STARTED" in last.text
    assert [a.text for a in last.find_elements(By.CSS_SELECTOR, "a.dep")] == ["second", "breaks"]
    shot(d, "batch")
    # keyboard: Tab reaches the failed build's link; Enter opens its page
    d.find_element(By.TAG_NAME, "body").click()
    for _ in range(40):
        d.switch_to.active_element.send_keys(Keys.TAB)
        a = d.switch_to.active_element
        if a.get_attribute("class") == "group-build" and a.text == "breaks":
            break
    else:
        raise AssertionError("Tab never reached the build 'breaks'")
    a.send_keys(Keys.ENTER)
    deadline = time.time() + 10
    while "/builds/graphs:" not in d.current_url:
        assert time.time() < deadline, d.current_url
        time.sleep(0.05)
    assert "FAILED" in d.find_element(By.ID, "build-status").text
    # and the build's page links back to its batch
    d.find_element(By.ID, "batch-link").click()
    assert d.current_url == serve.url + "/batches/" + b["id"], d.current_url
    # an unknown batch and a hostile id: a plain error page, nothing read
    for bad in ["graphs:00000000-0000-0000-0000-000000000000", "graphs:..%2F..%2Fbuilds",
                "%3Cscript%3Edocument.title%3D1%3C%2Fscript%3E"]:
        d.get(serve.url + "/batches/" + bad)
        assert d.find_elements(By.CSS_SELECTOR, "#batch-graph") == []
        assert d.title != "1"


def test_batch_pages_are_refused_without_a_session(env):
    _, serve = env
    status, _ = get(serve.url + "/batches/graphs:00000000-0000-0000-0000-000000000000")
    assert status == 401
    status, _ = get(serve.url + "/projects/graphs")
    assert status == 401
