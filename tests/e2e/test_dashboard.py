"""The web dashboard of `serve` in a real headless Chromium (Debian's chromium
driven by python3-selenium through chromium-driver): sign-in with the printed
link, everything refused without it, a build started from the page with an
environment override whose log lines appear live (in order, each once), the
failing phase on the timeline, a failing test's message on the reports page,
stop and retry, and a cross-site form that tries to stop a build.  A
screenshot of every page goes to <build dir>/screenshots/ for a person to look
at.  The browser's tests are skipped (with the reason) when the browser or its
driver is missing; the HTTP-level refusals run anyway."""
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import BIN, Runner

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.common.exceptions import StaleElementReferenceException
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - the skip below says why
    HAVE_SELENIUM = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [what for what, ok in [("python3-selenium", HAVE_SELENIUM),
                                  ("chromium", os.path.exists(CHROMIUM)),
                                  ("chromium-driver", os.path.exists(DRIVER))] if not ok]
NO_BROWSER = "no browser to test in: install " + " ".join(MISSING) + " (scripts/install-deps.sh)"

SHOTS = BIN.parent / "screenshots"

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - 'for i in $(seq 1 ${LINES:-3}); do printf "\\033[32mline-%s\\033[0m %s\\n" $i "$GREETING"; sleep ${PAUSE:-0}; done'
      - echo '<img src=x onerror="document.title=1"><script>document.title=2</script>'
      - 'if [ "$FAIL" = 1 ]; then echo "about to fail"; exit 3; fi'
      - sleep ${SLEEP:-0}
artifacts:
  files: [results/junit.xml]
reports:
  unit:
    files: [junit.xml]
    base-directory: results
    file-format: JUNITXML
  coverage:
    files: [results/coverage.xml]
    file-format: COBERTURAXML
"""

JUNIT = """<?xml version="1.0"?>
<testsuite name="calc" tests="2" failures="1">
<testcase classname="app.CalcTest" name="test_add" time="0.010"/>
<testcase classname="app.CalcTest" name="test_div" time="0.020">
  <failure message="ZeroDivisionError: division by zero">Traceback (most recent call last):
  File "calc.py", line 3, in div</failure></testcase>
</testsuite>
"""

COBERTURA = """<?xml version="1.0"?>
<coverage line-rate="0.6" branch-rate="0.5" version="7.2">
<packages><package name="app"><classes>
<class name="calc" filename="app/calc.py"><lines>
  <line number="1" hits="1"/><line number="2" hits="1"/><line number="3" hits="0"/>
  <line number="4" hits="1" branch="true" condition-coverage="50% (1/2)"/></lines></class>
<class name="util" filename="app/util.py"><lines><line number="1" hits="3"/></lines></class>
</classes></package></packages></coverage>
"""


class Serve:
    def __init__(self, home, tmp):
        env = dict(os.environ, CODEBUILD_LOCAL_HOME=str(home), AWS_CONFIG_FILE="/dev/null")
        self.proc = subprocess.Popen([str(BIN), "serve", "--no-auth", "--quiet", "--listen", "127.0.0.1:0"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(tmp / "serve.err", "w"), text=True)
        first = self.proc.stdout.readline()
        second = self.proc.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first
        assert second.startswith("dashboard: http://127.0.0.1:"), second
        self.url = first.split()[-1]
        self.login = second.split()[-1]
        assert "/login?token=" in self.login

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    home = tmp / "state"
    home.mkdir()
    cbl = Runner(home, tmp)
    src = cbl.project("src", BUILDSPEC, {"results/junit.xml": JUNIT, "results/coverage.xml": COBERTURA})
    doc = {"name": "web", "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
           "artifacts": {"type": "S3", "location": "bucket"},  # locally: the build's directory
           "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                           "environmentVariables": [
                               {"name": "GREETING", "value": "from-project", "type": "PLAINTEXT"},
                               {"name": "DB_PASSWORD", "value": "hunter2-secret", "type": "PLAINTEXT"},
                               {"name": "MARKUP", "value": "<b id=injected>bold</b>", "type": "PLAINTEXT"}]}}
    (tmp / "p.json").write_text(json.dumps(doc))
    cbl("create-project", "--cli-input-json", f"file://{tmp / 'p.json'}", check=0)
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


def shot(d, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SHOTS / f"{name}.png"))


def get(url, cookie=None, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def build_of(cbl, build_id):
    p = cbl("batch-get-builds", "--ids", build_id, check=0)
    return json.loads(p.stdout)["builds"][0]


def wait_done(cbl, build_id, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = build_of(cbl, build_id)
        if b["buildComplete"]:
            return b
        time.sleep(0.2)
    raise AssertionError(f"{build_id} did not finish")


def start_from_page(d, serve, env_text):
    d.get(serve.url + "/projects/web")
    box = d.find_element(By.ID, "env")
    box.clear()
    box.send_keys(env_text)
    d.find_element(By.ID, "start-build").click()
    deadline = time.time() + 20
    while "/builds/web:" not in d.current_url:
        assert time.time() < deadline, d.page_source[:2000]
        time.sleep(0.05)
    return d.current_url.split("/builds/", 1)[1].split("#")[0]


def click(d, by, what):
    """Clicks, again if the page's live refresh replaced the element."""
    for _ in range(20):
        try:
            d.find_element(by, what).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{what} kept going stale")


def log_lines(d):
    return d.execute_script(
        "return Array.from(document.querySelectorAll('#log .ln .tx')).map(e => e.textContent)")


def test_everything_is_refused_without_the_token(env):
    cbl, serve = env
    for path in ["/", "/projects/web", "/trends", "/builds/web:00000000-0000-0000-0000-000000000000",
                 "/builds/web:00000000-0000-0000-0000-000000000000/log",
                 "/builds/web:00000000-0000-0000-0000-000000000000/reports", "/nope"]:
        st, body = get(serve.url + path)
        assert st == 401, (path, st)
        assert "from-project" not in body and "<table" not in body, path
        # a made-up session is no session
        st, _ = get(serve.url + path, cookie="cbl_session=" + "0" * 64)
        assert st == 401, path
    st, _ = get(serve.url + "/login?token=" + "0" * 64)
    assert st == 403
    st, _ = get(serve.url + "/actions/stop", data=b"id=x&csrf=y", headers={"Origin": serve.url})
    assert st == 401
    # the API is still the API on the same port
    p = cbl("list-projects", check=0)
    assert "web" in p.stdout


def test_login_once_then_projects_page(env, browser):
    cbl, serve = env
    d = browser
    assert d.title.startswith("Projects")
    assert d.find_element(By.LINK_TEXT, "web")
    shot(d, "projects")
    # the cookie is HttpOnly: no script on the page can read it
    assert "cbl_session" not in d.execute_script("return document.cookie")
    c = d.get_cookie("cbl_session")
    assert c["httpOnly"] and c["sameSite"] == "Strict"
    # the link works once (the signed-in browser opening it again just goes on)
    st, body = get(serve.login)
    assert st == 403 and "used already" in body
    d.get(serve.login)
    assert d.current_url == serve.url + "/"
    # keyboard: the skip link is the first stop and leads to the content
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert d.switch_to.active_element.text == "Skip to content"
    # and the project is reachable with the keyboard alone
    for _ in range(15):
        d.switch_to.active_element.send_keys(Keys.TAB)
        if d.switch_to.active_element.text == "web":
            break
    assert d.switch_to.active_element.text == "web"
    d.switch_to.active_element.send_keys(Keys.ENTER)
    deadline = time.time() + 10
    while not d.current_url.endswith("/projects/web"):
        assert time.time() < deadline, d.current_url
        time.sleep(0.05)
    # nothing but this server: the page's policy forbids any other source
    cookie = "cbl_session=" + d.get_cookie("cbl_session")["value"]
    req = urllib.request.Request(serve.url + "/projects/web", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=10) as r:
        csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in d.page_source.split("<body", 1)[0].replace(serve.url, "")


def test_start_with_override_and_watch_the_log_live(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "GREETING=hello-from-page\nLINES=12\nPAUSE=0.3")
    seen_live = None
    deadline = time.time() + 60
    while time.time() < deadline:
        lines = [l for l in log_lines(d) if l.startswith("line-")]
        if lines and seen_live is None:
            seen_live = (len(lines), build_of(cbl, build_id)["buildComplete"])
        state = d.find_element(By.ID, "log-state").text
        if state.startswith("Build finished"):
            break
        time.sleep(0.05)
    assert seen_live is not None, d.page_source[-3000:]
    n_first, complete_then = seen_live
    assert n_first < 12 and not complete_then, "the lines did not arrive while the build ran"
    lines = [l for l in log_lines(d) if l.startswith("line-")]
    assert lines == [f"line-{i} hello-from-page" for i in range(1, 13)], lines
    all_lines = log_lines(d)
    assert len(all_lines) == len(set(zip(range(len(all_lines)), all_lines)))
    # ANSI colours became classes, never raw escapes
    assert d.find_elements(By.CSS_SELECTOR, "#log .a-fg32")
    assert not any("\x1b" in l for l in all_lines)
    # line links
    link = d.find_element(By.CSS_SELECTOR, "#L3 a")
    assert link.get_attribute("href").endswith("#L3")
    assert "SUCCEEDED" in d.find_element(By.ID, "build-status").text
    b = wait_done(cbl, build_id)
    assert b["buildStatus"] == "SUCCEEDED"
    env_rows = d.find_element(By.ID, "env").text
    # the record's variables: the project's, the start's override replacing its namesake
    assert "hello-from-page" in env_rows and "from-project" not in env_rows and "DB_PASSWORD" in env_rows
    assert "hunter2-secret" not in d.page_source
    # what a build prints or a project holds is text, never markup or script
    assert '<img src=x onerror="document.title=1"><script>document.title=2</script>' in all_lines
    assert not d.find_elements(By.CSS_SELECTOR, "#log img, #log script, #injected")
    assert "<b id=injected>bold</b>" in env_rows
    assert d.title.startswith("Build web")
    shot(d, "build")


def test_timeline_shows_the_failing_phase(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "FAIL=1")
    assert wait_done(cbl, build_id)["buildStatus"] == "FAILED"
    d.get(serve.url + "/builds/" + build_id)
    row = d.find_element(By.CSS_SELECTOR, "#timeline tr[data-phase=BUILD]")
    assert "phase-failed" in row.get_attribute("class") and "FAILED" in row.text
    ctx = d.find_element(By.CSS_SELECTOR, "#timeline tr.context").text
    assert "BUILD failed" in ctx and "COMMAND_EXECUTION_ERROR" in ctx and "exit status 3" in ctx
    # the context links to the failing command's line in the log
    deadline = time.time() + 20
    while not d.find_elements(By.CSS_SELECTOR, "#timeline tr.context a.to-log"):
        assert time.time() < deadline, "no link from the failing phase to the log"
        time.sleep(0.05)
    target = d.find_element(By.CSS_SELECTOR, "#timeline tr.context a.to-log").get_attribute("href").split("#")[1]
    assert "Running command if" in d.find_element(By.ID, target).text
    failed = [r.get_attribute("data-phase") for r in d.find_elements(By.CSS_SELECTOR, "#timeline tr.phase-failed")]
    assert failed == ["BUILD"]
    shot(d, "build-failed")
    # the project's page lists it; the filter keeps only failed builds
    d.get(serve.url + "/projects/web?status=FAILED")
    rows = d.find_elements(By.CSS_SELECTOR, "#builds tbody tr")
    assert rows and all("FAILED" in r.text for r in rows)
    shot(d, "builds")


def test_reports_page_shows_the_failing_test(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "")
    wait_done(cbl, build_id)
    d.get(serve.url + "/builds/" + build_id)
    d.find_element(By.ID, "reports-link").click()
    cases = d.find_elements(By.CSS_SELECTOR, "table.cases tbody tr")
    assert "test_div" in cases[0].text, "failures first"
    assert "ZeroDivisionError: division by zero" in cases[0].text
    assert 'File "calc.py", line 3' in cases[0].text
    # coverage per file
    cov = [r.text for r in d.find_elements(By.CSS_SELECTOR, "table.coverage tbody tr")]
    assert len(cov) == 2 and cov[0].startswith("app/calc.py 75.0% (3/4)") and cov[1].startswith("app/util.py 100.0%"), cov
    shot(d, "reports")
    # its artifact is listed and downloads (with the session only)
    d.get(serve.url + "/builds/" + build_id)
    link = d.find_element(By.CSS_SELECTOR, "#artifacts a.artifact")
    assert link.text == "artifacts.zip"
    href = link.get_attribute("href")
    cookie = "cbl_session=" + d.get_cookie("cbl_session")["value"]
    req = urllib.request.Request(href, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["results/junit.xml"]
    assert get(href)[0] == 401
    for bad in ["/artifacts/7", "/artifacts/..%2f..%2fbuild.json", "/artifacts/-1", "/artifacts/"]:
        assert get(serve.url + "/builds/" + build_id + bad, cookie=cookie)[0] == 404, bad


def test_stop_and_retry(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "SLEEP=60")
    assert not build_of(cbl, build_id)["buildComplete"]
    click(d, By.ID, "stop-build")
    b = wait_done(cbl, build_id, timeout=40)
    assert b["buildStatus"] == "STOPPED"
    d.get(serve.url + "/builds/" + build_id)
    click(d, By.ID, "retry-build")
    deadline = time.time() + 20
    while build_id in d.current_url or "/builds/" not in d.current_url:
        assert time.time() < deadline
        time.sleep(0.05)
    retried = d.current_url.split("/builds/", 1)[1]
    r = build_of(cbl, retried)
    assert r["id"] != build_id and r["buildNumber"] > b["buildNumber"]
    time.sleep(2)  # the override SLEEP=60 came along: it is still running
    assert not build_of(cbl, retried)["buildComplete"]
    click(d, By.ID, "stop-build")
    assert wait_done(cbl, retried, timeout=40)["buildStatus"] == "STOPPED"


def test_log_stream_resumes_where_it_left_off(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "LINES=5")
    wait_done(cbl, build_id)
    cookie = "cbl_session=" + d.get_cookie("cbl_session")["value"]

    def events(last=None):
        h = {"Cookie": cookie}
        if last is not None:
            h["Last-Event-ID"] = str(last)
        req = urllib.request.Request(serve.url + "/builds/" + build_id + "/log", headers=h)
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            text = r.read().decode()
        out = []
        for block in text.split("\n\n"):
            fields = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l and not l.startswith(":"))
            if fields:
                out.append(fields)
        return out

    every = events()
    assert every[-1] == {"event": "end", "data": "SUCCEEDED"}
    lines = [e for e in every if "id" in e]
    # the same lines as GetLogEvents, in order
    b = build_of(cbl, build_id)
    p = cbl("logs", "get-log-events", "--log-group-name", b["logs"]["groupName"], "--log-stream-name",
            b["logs"]["streamName"], "--start-from-head", check=0)
    api = [e["message"].rstrip("\n") for e in json.loads(p.stdout)["events"]]
    assert [e["data"] for e in lines] == [m.rstrip("\r") for m in api]
    # a reconnection with the id of line 3 goes on with line 4, once
    again = [e for e in events(lines[2]["id"]) if "id" in e]
    assert again == lines[3:]


def test_trends_page(env, browser):
    _, serve = env
    d = browser
    d.get(serve.url + "/trends")
    chart = d.find_element(By.CSS_SELECTOR, "svg.trend")
    assert chart.find_elements(By.CSS_SELECTOR, "rect.ok") and chart.find_elements(By.CSS_SELECTOR, "rect.bad")
    shot(d, "trends")


class Attacker(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *a):
        pass


def runner_alive(cbl, build_id):
    project, uuid = build_id.split(":")
    pid = int((cbl.home / "builds" / project / uuid / "runner.pid").read_text().split()[0])
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_cross_site_form_cannot_stop_a_build(env, browser):
    cbl, serve = env
    d = browser
    build_id = start_from_page(d, serve, "SLEEP=6")
    csrf = d.find_element(By.CSS_SELECTOR, "form.stop input[name=csrf]").get_attribute("value")
    # another site (another port of 127.0.0.1: the browser still sends the cookie)
    # posts the stop form on its own, with a guessed token
    Attacker.page = f"""<html><body><form id="f" method="post" action="{serve.url}/actions/stop">
<input name="id" value="{build_id}"><input name="csrf" value="{'a' * 64}"></form>
<script>document.getElementById('f').submit()</script></body></html>""".encode()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        d.get(f"http://127.0.0.1:{srv.server_port}/")
        deadline = time.time() + 10
        while "Refused" not in d.page_source:
            assert time.time() < deadline, d.page_source[:1500]
            time.sleep(0.05)
        assert "Error 403" in d.title
        shot(d, "csrf-refused")
        # even with the right token, a request from elsewhere (no Origin of ours) is refused
        cookie = "cbl_session=" + d.get_cookie("cbl_session")["value"]
        body = f"id={build_id}&csrf={csrf}".encode()
        st, _ = get(serve.url + "/actions/stop", cookie=cookie, data=body)
        assert st == 403
        st, _ = get(serve.url + "/actions/stop", cookie=cookie, data=body,
                    headers={"Origin": f"http://127.0.0.1:{srv.server_port}"})
        assert st == 403
    finally:
        srv.shutdown()
    # the host side: the build's runner is still there and the build ends on its own
    assert runner_alive(cbl, build_id)
    assert not build_of(cbl, build_id)["buildComplete"]
    b = wait_done(cbl, build_id, timeout=60)
    assert b["buildStatus"] == "SUCCEEDED", b["buildStatus"]
