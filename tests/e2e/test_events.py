"""`serve --events-webhook` and CloudWatch alarms: a receiver on 127.0.0.1
gets the builds' EventBridge events in order, each once (across a restart
of serve and failed deliveries), and an alarm's SNS notifications."""
import http.server
import json
import threading
import time

import pytest

from test_server import aws, start_server

TOPIC = "arn:aws:sns:us-east-1:000000000000:build-alarms"
PHASES = ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD",
          "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING"]


class Receiver:
    """Records the JSON POSTed to it; answers 500 to the first `fail` ones."""

    def __init__(self, fail=0):
        self.got, self.fail, self.refused = [], fail, 0
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if rx.fail > 0:
                    rx.fail -= 1
                    rx.refused += 1
                    self.send_response(500)
                else:
                    rx.got.append((self.path, json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.got):
                return True
            time.sleep(0.1)
        return False


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.srv.shutdown()


def spec(commands):
    return "version: 0.2\nphases:\n  build:\n    commands:\n" + "".join(f"      - \"{c}\"\n" for c in commands)


def events_of(got, build_arn):
    out = []
    for path, e in got:
        if path == "/events" and e["resources"] == [build_arn]:
            d = e["detail"]
            out.append(d.get("completed-phase") or d["build-status"])
    return out


def test_events_in_order_each_once_across_a_restart(cbl, home, rx):
    rx.fail = 2  # the first deliveries are refused: retried, not lost, not doubled
    s = start_server(home, "--events-webhook", rx.url + "/events")
    src = cbl.project("evented", spec(["sleep 3", "true"]))
    p = cbl.argv(["run", "--project", "evented", src])
    import subprocess
    build = subprocess.Popen(p, env=cbl.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert rx.wait(lambda g: any(e["detail"].get("completed-phase") == "PROVISIONING" for _, e in g)), rx.got
    assert s.stop() == 0, s.stderr  # serve goes away mid-build
    out, _ = build.communicate(timeout=60)
    assert build.returncode == 0, out
    n = len(rx.got)
    time.sleep(1.5)
    assert len(rx.got) == n  # nothing delivered while serve is down
    s = start_server(home, "--events-webhook", rx.url + "/events")
    try:
        arn = rx.got[0][1]["resources"][0]
        want = ["IN_PROGRESS", *PHASES, "SUCCEEDED"]
        assert rx.wait(lambda g: len(events_of(g, arn)) >= len(want)), events_of(rx.got, arn)
        time.sleep(1.5)
        assert events_of(rx.got, arn) == want
        assert rx.refused == 2
        state = rx.got[-1][1]
        assert state["detail-type"] == "CodeBuild Build State Change" and state["source"] == "aws.codebuild"
        assert state["detail"]["project-name"] == "evented" and state["detail"]["build-id"] == arn
        assert state["detail"]["additional-information"]["build-complete"] is True
        build_phase = [e for _, e in rx.got if e["detail"].get("completed-phase") == "BUILD"][0]
        assert build_phase["detail-type"] == "CodeBuild Build Phase Change"
        assert build_phase["detail"]["completed-phase-status"] == "SUCCEEDED"
        assert build_phase["detail"]["completed-phase-duration-seconds"] >= 2
        assert set(build_phase) >= {"version", "id", "account", "time", "region", "resources"}
    finally:
        assert s.stop() == 0, s.stderr


def test_failed_build_alarm_fires_and_returns_to_ok(cbl, home, rx):
    s = start_server(home, "--sns-topic", f"{TOPIC}={rx.url}/sns")
    try:
        p = aws(s.url, "cloudwatch", "put-metric-alarm", "--alarm-name", "failures", "--namespace",
                "AWS/CodeBuild", "--metric-name", "FailedBuilds", "--dimensions", "Name=ProjectName,Value=flaky",
                "--statistic", "Sum", "--period", "60", "--evaluation-periods", "1", "--threshold", "1",
                "--comparison-operator", "GreaterThanOrEqualToThreshold", "--treat-missing-data", "notBreaching",
                "--alarm-actions", TOPIC, "--ok-actions", TOPIC)
        assert p.returncode == 0, p.stderr

        def states(g):
            return [json.loads(e["Message"])["NewStateValue"] for path, e in g if path == "/sns"]

        # no failure yet: OK (missing data is not breaching)
        assert rx.wait(lambda g: states(g) == ["OK"]), rx.got
        # wait for a fresh minute so the OK that follows comes after the failure's period
        while time.time() % 60 > 40:
            time.sleep(1)
        src = cbl.project("flaky", spec(["false"]))
        cbl("run", "--project", "flaky", src, check=1)
        t0 = time.time()
        assert rx.wait(lambda g: states(g) == ["OK", "ALARM"], timeout=10), rx.got
        assert time.time() - t0 < 10  # within the period, not after it
        note = [e for path, e in rx.got if path == "/sns"][1]
        assert note["Type"] == "Notification" and note["TopicArn"] == TOPIC
        msg = json.loads(note["Message"])
        assert msg["AlarmName"] == "failures" and msg["OldStateValue"] == "OK"
        assert msg["Trigger"]["MetricName"] == "FailedBuilds" and msg["Trigger"]["Threshold"] == 1.0
        p = aws(s.url, "cloudwatch", "describe-alarms", "--alarm-names", "failures")
        [a] = json.loads(p.stdout)["MetricAlarms"]
        assert a["StateValue"] == "ALARM" and a["Period"] == 60 and a["TreatMissingData"] == "notBreaching"
        # the next minute has no failure: back to OK
        assert rx.wait(lambda g: states(g) == ["OK", "ALARM", "OK"], timeout=90), rx.got
        # SetAlarmState, DeleteAlarms
        p = aws(s.url, "cloudwatch", "set-alarm-state", "--alarm-name", "failures", "--state-value", "ALARM",
                "--state-reason", "testing the action")
        assert p.returncode == 0, p.stderr
        # (the next evaluation, a second later, puts it back to OK, as CloudWatch's does)
        assert rx.wait(lambda g: states(g)[3:4] == ["ALARM"]), rx.got
        reasons = [json.loads(e["Message"])["NewStateReason"] for path, e in rx.got if path == "/sns"]
        assert reasons[3] == "testing the action"
        p = aws(s.url, "cloudwatch", "delete-alarms", "--alarm-names", "failures")
        assert p.returncode == 0, p.stderr
        p = aws(s.url, "cloudwatch", "describe-alarms")
        assert json.loads(p.stdout)["MetricAlarms"] == []
        p = aws(s.url, "cloudwatch", "delete-alarms", "--alarm-names", "failures")
        assert p.returncode != 0 and "ResourceNotFound" in p.stderr
    finally:
        assert s.stop() == 0, s.stderr


def test_bad_alarm_and_mapping_errors(cbl, home):
    s = start_server(home, "--events-webhook", "ftp://127.0.0.1/x", expect_ready=False)
    assert s.proc.returncode == 2 and "--events-webhook ftp://127.0.0.1/x" in s.stderr
    s = start_server(home, "--sns-topic", "not-an-arn", expect_ready=False)
    assert s.proc.returncode == 2 and "want ARN=URL" in s.stderr
    s = start_server(home)
    try:
        p = aws(s.url, "cloudwatch", "put-metric-alarm", "--alarm-name", "x", "--namespace", "AWS/CodeBuild",
                "--metric-name", "FailedBuilds", "--statistic", "Sum", "--period", "45", "--evaluation-periods",
                "1", "--threshold", "1", "--comparison-operator", "GreaterThanThreshold")
        assert p.returncode != 0 and "Period must be 10, 30 or a multiple of 60" in p.stderr
    finally:
        assert s.stop() == 0


def test_alarm_action_to_a_command(cbl, home, tmp_path):
    out = tmp_path / "notes"
    leaked = tmp_path / "aws-vars"
    cmd = f"env | grep -c '^AWS_' > {leaked}; cat >> {out}; echo >> {out}"
    s = start_server(home, "--sns-topic", f"{TOPIC}=exec:{cmd}")
    try:
        p = aws(s.url, "cloudwatch", "put-metric-alarm", "--alarm-name", "by-hand", "--namespace",
                "AWS/CodeBuild", "--metric-name", "Builds", "--statistic", "Sum", "--period", "60",
                "--evaluation-periods", "1", "--threshold", "100", "--comparison-operator",
                "GreaterThanThreshold", "--treat-missing-data", "ignore", "--alarm-actions", TOPIC)
        assert p.returncode == 0, p.stderr
        p = aws(s.url, "cloudwatch", "set-alarm-state", "--alarm-name", "by-hand", "--state-value", "ALARM",
                "--state-reason", "by hand")
        assert p.returncode == 0, p.stderr
        deadline = time.time() + 20
        while time.time() < deadline and not (out.exists() and out.read_text().strip()):
            time.sleep(0.1)
        note = json.loads(out.read_text().splitlines()[0])
        assert note["TopicArn"] == TOPIC and json.loads(note["Message"])["NewStateReason"] == "by hand"
        assert leaked.read_text().strip() == "0"  # serve's keys stay out of the command's environment
        # treat-missing-data ignore: no data keeps the state set by hand
        time.sleep(2)
        p = aws(s.url, "cloudwatch", "describe-alarms", "--alarm-names", "by-hand")
        assert json.loads(p.stdout)["MetricAlarms"][0]["StateValue"] == "ALARM"
    finally:
        assert s.stop() == 0, s.stderr
