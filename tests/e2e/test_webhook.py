"""Webhook events offline: `webhook test` evaluates filter groups the way the
service documents them (WebhookFilter in the API reference, "Filter GitHub
webhook events"), and `run --webhook-event` sets CODEBUILD_WEBHOOK_* and
CODEBUILD_SOURCE_VERSION as a webhook's build has them.

Each expected result of the table comes from the documented semantics:
- a build starts when any filter group passes, a group passes when all its
  filters pass (create-webhook's --filter-groups);
- EVENT takes a comma-separated list of events; the other types a regular
  expression (the documented examples: HEAD_REF ^refs/heads/, BASE_REF
  ^refs/heads/main$, FILE_PATH ^buildspec.*, COMMIT_MESSAGE \\[CodeBuild\\]);
- BASE_REF works with pull request events only;
- excludeMatchedPattern: "If true, then a webhook event that does not match
  the pattern triggers a build".
"""
import json
import subprocess

import pytest

PR_ONLY = [[{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, "
             "PULL_REQUEST_REOPENED, PULL_REQUEST_MERGED, PULL_REQUEST_CLOSED"}]]
# the documented two-group example
TWO_GROUPS = [
    [{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED"},
     {"type": "HEAD_REF", "pattern": "^refs/heads/myBranch$"},
     {"type": "BASE_REF", "pattern": "^refs/heads/main$"}],
    [{"type": "EVENT", "pattern": "PUSH"},
     {"type": "HEAD_REF", "pattern": "^refs/heads/myBranch$"}],
]
NOT_MAIN = [[{"type": "EVENT", "pattern": "PUSH"},
             {"type": "HEAD_REF", "pattern": "^refs/heads/main$", "excludeMatchedPattern": True}]]
BUILDSPEC_CHANGES = [[{"type": "EVENT", "pattern": "PUSH"}, {"type": "FILE_PATH", "pattern": "^buildspec.*"}]]
NOT_README = [[{"type": "EVENT", "pattern": "PUSH"},
               {"type": "FILE_PATH", "pattern": "^README\\.md$", "excludeMatchedPattern": True}]]
COMMIT_TAG = [[{"type": "EVENT", "pattern": "PUSH"}, {"type": "COMMIT_MESSAGE", "pattern": "\\[CodeBuild\\]"}]]
ACTOR = [[{"type": "EVENT", "pattern": "PUSH,PULL_REQUEST_CREATED"},
          {"type": "ACTOR_ACCOUNT_ID", "pattern": "^12345$"}]]
BASE_ON_PUSH = [[{"type": "EVENT", "pattern": "PUSH"}, {"type": "BASE_REF", "pattern": "^refs/heads/main$"}]]
TAGS = [[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "^refs/tags/v[0-9]+"}]]
RELEASES = [[{"type": "EVENT", "pattern": "RELEASED, PRERELEASED"},
             {"type": "TAG_NAME", "pattern": "^v\\d+\\.\\d+$"}]]
PARTIAL = [[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "main"}]]

PR = ["--event", "PULL_REQUEST_CREATED", "--pr", "7", "--base-ref", "refs/heads/main"]

# (id, filter groups, event flags, triggers, {group: failing filter} for the
# groups that fail)
CASES = [
    ("pr-only/pr", PR_ONLY, PR + ["--head-ref", "f"], True, {}),
    ("pr-only/push", PR_ONLY, ["--event", "PUSH", "--head-ref", "main"], False, {1: 1}),
    ("two/pr-mybranch", TWO_GROUPS, PR + ["--head-ref", "refs/heads/myBranch"], True, {2: 1}),
    ("two/pr-other-head", TWO_GROUPS, PR + ["--head-ref", "other"], False, {1: 2, 2: 1}),
    ("two/pr-other-base", TWO_GROUPS,
     ["--event", "PULL_REQUEST_UPDATED", "--pr", "3", "--base-ref", "dev", "--head-ref", "myBranch"], False,
     {1: 3, 2: 1}),
    ("two/push-mybranch", TWO_GROUPS, ["--event", "PUSH", "--head-ref", "myBranch"], True, {1: 1}),
    ("two/push-main", TWO_GROUPS, ["--event", "PUSH", "--head-ref", "main"], False, {1: 1, 2: 2}),
    ("two/pr-merged", TWO_GROUPS,
     ["--event", "PULL_REQUEST_MERGED", "--pr", "7", "--base-ref", "main", "--head-ref", "myBranch"], False,
     {1: 1, 2: 1}),
    ("exclude/feature", NOT_MAIN, ["--event", "PUSH", "--head-ref", "feature"], True, {}),
    ("exclude/main", NOT_MAIN, ["--event", "PUSH", "--head-ref", "main"], False, {1: 2}),
    ("file/buildspec", BUILDSPEC_CHANGES,
     ["--event", "PUSH", "--head-ref", "main", "--changed-file", "src/a.c", "--changed-file", "buildspec.yml"],
     True, {}),
    ("file/src-only", BUILDSPEC_CHANGES, ["--event", "PUSH", "--head-ref", "main", "--changed-file", "src/a.c"],
     False, {1: 2}),
    ("file/not-readme/readme", NOT_README,
     ["--event", "PUSH", "--head-ref", "main", "--changed-file", "README.md"], False, {1: 2}),
    ("file/not-readme/src", NOT_README,
     ["--event", "PUSH", "--head-ref", "main", "--changed-file", "src/a.c"], True, {}),
    ("message/tagged", COMMIT_TAG,
     ["--event", "PUSH", "--head-ref", "main", "--commit-message", "[CodeBuild] release"], True, {}),
    ("message/untagged", COMMIT_TAG,
     ["--event", "PUSH", "--head-ref", "main", "--commit-message", "fix a typo"], False, {1: 2}),
    ("actor/match", ACTOR, ["--event", "PUSH", "--head-ref", "main", "--actor-account-id", "12345"], True, {}),
    ("actor/prefix-only", ACTOR, ["--event", "PUSH", "--head-ref", "main", "--actor-account-id", "123456"],
     False, {1: 2}),
    ("actor/absent", ACTOR, ["--event", "PUSH", "--head-ref", "main"], False, {1: 2}),
    ("base-ref/push", BASE_ON_PUSH, ["--event", "PUSH", "--head-ref", "main"], False, {1: 2}),
    ("tags/v1", TAGS, ["--event", "PUSH", "--head-ref", "refs/tags/v1"], True, {}),
    ("tags/branch", TAGS, ["--event", "PUSH", "--head-ref", "v1"], False, {1: 2}),
    ("release/v1.2", RELEASES, ["--event", "RELEASED", "--tag-name", "v1.2"], True, {}),
    ("release/beta", RELEASES, ["--event", "PRERELEASED", "--tag-name", "v1.2-beta"], False, {1: 2}),
    ("unanchored", PARTIAL, ["--event", "PUSH", "--head-ref", "refs/heads/not-main-really"], True, {}),
    ("no-groups", [], ["--event", "PUSH", "--head-ref", "main"], True, {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_filter_groups(cbl, tmp_path, case):
    _, groups, flags, triggers, failing = case
    p = cbl("webhook", "test", "--json", "--filter-groups", json.dumps(groups), "--source", tmp_path, *flags)
    assert p.returncode == (0 if triggers else 1), p.output
    out = json.loads(p.stdout)
    assert out["triggers"] is triggers
    got = {i + 1: g["failedFilter"] for i, g in enumerate(out["filterGroups"]) if not g["passes"]}
    assert got == failing, out
    if triggers and groups:
        first = min(i + 1 for i in range(len(groups)) if i + 1 not in failing)
        assert out["filterGroup"] == first


@pytest.mark.parametrize("groups,flags,needle", [
    ([[{"type": "HEAD_REF", "pattern": "main"}]], ["--event", "PUSH", "--head-ref", "main"], "no EVENT filter"),
    ([[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "(?i)main"}]],
     ["--event", "PUSH", "--head-ref", "main"], "(?...)"),
    ([[{"type": "EVENT", "pattern": "PUSH, SHOVE"}]], ["--event", "PUSH", "--head-ref", "main"], "unknown event 'SHOVE'"),
    ([[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "(main"}]],
     ["--event", "PUSH", "--head-ref", "main"], "invalid pattern '(main'"),
    ([[{"type": "EVENT", "pattern": "PUSH"}]], ["--event", "PULL_REQUEST_CREATED", "--head-ref", "f"],
     "needs the pull request's number"),
    ([[{"type": "EVENT", "pattern": "PUSH"}]], ["--event", "PUSHED", "--head-ref", "f"], "unknown webhook event 'PUSHED'"),
])
def test_invalid_filters_are_errors(cbl, tmp_path, groups, flags, needle):
    p = cbl("webhook", "test", "--filter-groups", json.dumps(groups), "--source", tmp_path, *flags)
    assert p.returncode == 2, p.output
    assert needle in p.stderr


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """main: README + src; feature (a pull request's head): a change under src/."""
    d = tmp_path / "repo"
    d.mkdir()
    git(d, "init", "-q", "-b", "main")
    (d / "README.md").write_text("readme\n")
    (d / "src").mkdir()
    (d / "src" / "a.c").write_text("int a;\n")
    (d / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n"
        "      - env | grep -E '^CODEBUILD_(WEBHOOK_|SOURCE_VERSION|INITIATOR|RESOLVED)' | sort\n")
    git(d, "add", ".")
    git(d, "commit", "-qm", "init")
    git(d, "checkout", "-qb", "feature")
    (d / "src" / "b.c").write_text("int b;\n")
    git(d, "add", ".")
    git(d, "commit", "-qm", "[CodeBuild] add b")
    return d


def rev(d, r):
    return subprocess.run(["git", "rev-parse", r], cwd=d, check=True, capture_output=True, text=True).stdout.strip()


def test_file_path_and_message_come_from_git(cbl, repo):
    """Without --changed-file, FILE_PATH sees what the pull request changes
    (merge base .. head) and COMMIT_MESSAGE the head commit's message."""
    groups = [[{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED"}, {"type": "FILE_PATH", "pattern": "^src/b\\.c$"},
               {"type": "COMMIT_MESSAGE", "pattern": "^\\[CodeBuild\\]"}]]
    p = cbl("webhook", "test", "--json", "--filter-groups", json.dumps(groups), "--source", repo, *PR,
            "--head-ref", "feature")
    assert p.returncode == 0, p.output
    out = json.loads(p.stdout)
    assert out["environmentVariables"]["CODEBUILD_WEBHOOK_PREV_COMMIT"] == rev(repo, "main")
    docs_only = [[{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED"}, {"type": "FILE_PATH", "pattern": "^docs/"}]]
    p = cbl("webhook", "test", "--filter-groups", json.dumps(docs_only), "--source", repo, *PR, "--head-ref", "feature")
    assert p.returncode == 1, p.output
    assert "none of the 1 changed files matches" in p.stdout


def env_lines(output):
    return dict(line.split("=", 1) for line in output.splitlines() if line.startswith("CODEBUILD_"))


def test_run_pull_request_event(cbl, repo):
    p = cbl("run", "--webhook-event", "PULL_REQUEST_CREATED", "--pr", "7", "--base-ref", "main", "--head-ref",
            "feature", "--actor-account-id", "461164", repo)
    assert p.returncode == 0, p.output
    env = env_lines(p.stdout)
    assert env["CODEBUILD_WEBHOOK_EVENT"] == "PULL_REQUEST_CREATED"
    assert env["CODEBUILD_WEBHOOK_TRIGGER"] == "pr/7"
    assert env["CODEBUILD_SOURCE_VERSION"] == "pr/7"
    assert env["CODEBUILD_WEBHOOK_HEAD_REF"] == "refs/heads/feature"
    assert env["CODEBUILD_WEBHOOK_BASE_REF"] == "refs/heads/main"
    assert env["CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID"] == "461164"
    assert env["CODEBUILD_WEBHOOK_PREV_COMMIT"] == rev(repo, "main")
    assert env["CODEBUILD_INITIATOR"].startswith("GitHub-Hookshot/")
    assert "CODEBUILD_WEBHOOK_MERGE_COMMIT" not in env


def test_run_push_and_tag_events(cbl, repo):
    p = cbl("run", "--webhook-event", "PUSH", "--head-ref", "feature", repo)
    assert p.returncode == 0, p.output
    env = env_lines(p.stdout)
    assert env["CODEBUILD_WEBHOOK_TRIGGER"] == "branch/feature"
    assert env["CODEBUILD_SOURCE_VERSION"] == rev(repo, "HEAD")
    assert env["CODEBUILD_WEBHOOK_PREV_COMMIT"] == rev(repo, "HEAD~1")
    assert "CODEBUILD_WEBHOOK_BASE_REF" not in env
    p = cbl("run", "--webhook-event", "PUSH", "--head-ref", "refs/tags/v1.0", repo)
    assert p.returncode == 0, p.output
    assert env_lines(p.stdout)["CODEBUILD_WEBHOOK_TRIGGER"] == "tag/v1.0"


def test_run_pull_request_of_a_git_source(cbl, repo):
    """A git URL source with a pull request event clones pr/N
    (refs/pull/N/head), as the service's webhook build does."""
    git(repo, "update-ref", "refs/pull/7/head", "feature")
    git(repo, "checkout", "-q", "main")
    p = cbl("run", "--webhook-event", "PULL_REQUEST_UPDATED", "--pr", "7", "--base-ref", "main", "--head-ref",
            "feature", f"file://{repo}")
    assert p.returncode == 0, p.output
    env = env_lines(p.stdout)
    assert env["CODEBUILD_SOURCE_VERSION"] == "pr/7"
    assert env["CODEBUILD_RESOLVED_SOURCE_VERSION"] == rev(repo, "feature")


def test_run_event_flag_errors(cbl, repo):
    p = cbl("run", "--head-ref", "main", repo)
    assert p.returncode == 2 and "need --webhook-event" in p.stderr, p.output
    p = cbl("run", "--webhook-event", "PULL_REQUEST_CREATED", "--head-ref", "f", repo)
    assert p.returncode == 2 and "--pr N" in p.stderr, p.output
    p = cbl("run", "--webhook-event", "PUSH", "--head-ref", "main", "--base-ref", "dev", repo)
    assert p.returncode == 2 and "pull request events" in p.stderr, p.output
