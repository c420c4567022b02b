"""CloudWatch on `serve` through the current JavaScript SDK v3 client
(@aws-sdk/client-cloudwatch), run under node: it speaks CloudWatch's JSON 1.0
protocol in its query-compatible mode (X-Amz-Target GraniteServiceVersion20100801.*,
x-amzn-query-mode: true), signed for "monitoring"."""
import json
import os
import shutil
import subprocess

import pytest

from test_cloudwatch import NS, stored, window  # noqa: F401
from test_server import AKID, ROOT, SECRET, clean_aws_env  # noqa: F401

# pinned: the version whose protocol README's CloudWatch section describes
PACKAGE = "@aws-sdk/client-cloudwatch@3.1178.0"

JS = r"""
const cw = require("@aws-sdk/client-cloudwatch");
const NS = "AWS/CodeBuild";
const mk = (secret) => new cw.CloudWatchClient({
  endpoint: process.env.URL, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.AKID, secretAccessKey: secret },
});
const fail = (e) => ({ ok: false, name: e.name, status: e.$metadata && e.$metadata.httpStatusCode,
                       message: e.message, code: e.Code, type: e.Type });
(async () => {
  const c = mk(process.env.SECRET);
  const start = new Date(Number(process.env.START) * 1000), end = new Date(Number(process.env.END) * 1000);
  const out = { stats: {} };
  for (const m of ["Builds", "SucceededBuilds", "FailedBuilds"]) {
    const r = await c.send(new cw.GetMetricStatisticsCommand({
      Namespace: NS, MetricName: m, Dimensions: [{ Name: "ProjectName", Value: "alpha" }],
      StartTime: start, EndTime: end, Period: 7200, Statistics: ["Sum", "SampleCount", "Average"] }));
    out.stats[m] = { label: r.Label, points: r.Datapoints.map((d) => ({
      Sum: d.Sum, SampleCount: d.SampleCount, Average: d.Average, Unit: d.Unit,
      date: d.Timestamp instanceof Date && !isNaN(d.Timestamp), t: d.Timestamp.getTime() / 1000 })) };
  }
  const l = await c.send(new cw.ListMetricsCommand({ Namespace: NS, MetricName: "FailedBuilds" }));
  out.metrics = l.Metrics.map((m) => JSON.stringify(m.Dimensions || []));
  const d = await c.send(new cw.GetMetricDataCommand({ StartTime: start, EndTime: end, MetricDataQueries: [
    { Id: "n", MetricStat: { Metric: { Namespace: NS, MetricName: "Builds" }, Period: 7200, Stat: "SampleCount" } }] }));
  out.data = { values: d.MetricDataResults[0].Values, status: d.MetricDataResults[0].StatusCode };
  await c.send(new cw.PutMetricAlarmCommand({
    AlarmName: "js-failures", Namespace: NS, MetricName: "FailedBuilds",
    Dimensions: [{ Name: "ProjectName", Value: "alpha" }], Statistic: "Sum", Period: 60,
    EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold",
    TreatMissingData: "notBreaching", AlarmActions: ["arn:aws:sns:us-east-1:000000000000:t"] }));
  const a = await c.send(new cw.DescribeAlarmsCommand({ AlarmNames: ["js-failures"] }));
  out.alarms = a.MetricAlarms.map((x) => ({ name: x.AlarmName, metric: x.MetricName, threshold: x.Threshold,
    op: x.ComparisonOperator, period: x.Period, actions: x.AlarmActions,
    updated: x.AlarmConfigurationUpdatedTimestamp instanceof Date }));
  await c.send(new cw.DeleteAlarmsCommand({ AlarmNames: ["js-failures"] }));
  out.afterDelete = (await c.send(new cw.DescribeAlarmsCommand({ AlarmNames: ["js-failures"] }))).MetricAlarms.length;
  try {
    await c.send(new cw.GetMetricStatisticsCommand({ Namespace: "AWS/EC2", MetricName: "CPUUtilization",
      StartTime: start, EndTime: end, Period: 60, Statistics: ["Sum"] }));
    out.badNamespace = { ok: true };
  } catch (e) { out.badNamespace = fail(e); }
  try {
    await mk("wrong").send(new cw.ListMetricsCommand({ Namespace: NS }));
    out.badSignature = { ok: true };
  } catch (e) { out.badSignature = fail(e); }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def jssdk_cw_dir():
    """The pinned @aws-sdk/client-cloudwatch under build/jssdk-cw (installed once), or None."""
    d = ROOT / "build" / "jssdk-cw"
    if (d / "node_modules" / "@aws-sdk" / "client-cloudwatch").is_dir():
        return d
    if not shutil.which("npm") or not shutil.which("node"):
        return None
    d.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["npm", "install", "--prefix", str(d), "--no-audit", "--no-fund", "--loglevel=error",
                        PACKAGE], capture_output=True, text=True, timeout=600)
    return d if p.returncode == 0 else None


def test_js_sdk_v3_cloudwatch(stored, clean_aws_env):  # noqa: F811
    d = jssdk_cw_dir()
    if d is None:
        pytest.skip("npm/node or " + PACKAGE + " unavailable")
    start, end = window()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(URL=stored.url, AKID=AKID, SECRET=SECRET, NODE_PATH=str(d / "node_modules"),
               START=str(int(start.timestamp())), END=str(int(end.timestamp())),
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    p = subprocess.run(["node", "-e", JS], env=env, capture_output=True, text=True, timeout=120, cwd=str(d))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # alpha: 2 succeeded and 1 failed build
    sums = {m: sum(pt["Sum"] for pt in s["points"]) for m, s in out["stats"].items()}
    assert sums == {"Builds": 3, "SucceededBuilds": 2, "FailedBuilds": 1}, out["stats"]
    for m, s in out["stats"].items():
        assert s["label"] == m and sum(pt["SampleCount"] for pt in s["points"]) == 3
        assert all(pt["date"] and pt["t"] % 7200 == 0 and pt["Unit"] == "Count" for pt in s["points"]), s
        assert all(pt["Average"] == pytest.approx(pt["Sum"] / pt["SampleCount"]) for pt in s["points"])
    assert sorted(out["metrics"]) == sorted(['[]', '[{"Name":"ProjectName","Value":"alpha"}]',
                                             '[{"Name":"ProjectName","Value":"beta"}]'])
    assert sum(out["data"]["values"]) == 6 and out["data"]["status"] == "Complete", out["data"]
    assert out["alarms"] == [{"name": "js-failures", "metric": "FailedBuilds", "threshold": 1,
                              "op": "GreaterThanOrEqualToThreshold", "period": 60,
                              "actions": ["arn:aws:sns:us-east-1:000000000000:t"], "updated": True}], out
    assert out["afterDelete"] == 0
    bad = out["badNamespace"]
    # the SDK maps the query-protocol code back to the model's exception
    assert (bad["ok"], bad["name"], bad["status"]) == (False, "InvalidParameterValueException", 400), bad
    assert "AWS/CodeBuild" in bad["message"]
    # and the query code from x-amzn-query-error, as CloudWatch sends it
    assert (bad["code"], bad["type"]) == ("InvalidParameterValue", "Sender"), bad
    assert out["badSignature"]["ok"] is False and out["badSignature"]["status"] in (400, 403), out
    assert "Signature" in out["badSignature"]["name"], out["badSignature"]
