"""`watcherd check-config` warns when the schedule asks Trakt for more than the rate budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcherd.cli import main

CLIENT_ID = "client-id-BUDGET-5e6f"


def config_text(api: str, users: int, interval: str, rate_limit: int | None) -> str:
    if api == "v2":
        trakt = f'api = "v2"\nbase_url = "https://127.0.0.1:9"\nclient_id = "{CLIENT_ID}"\n'
        if rate_limit is not None:
            trakt += f"rate_limit = {rate_limit}\n"
    else:
        trakt = 'api = "v1"\nbase_url = "http://127.0.0.1:9"\napi_key = "key-BUDGET-1a2b"\n'
    people = "".join(f'[[users]]\nusername = "friend{index}"\n' for index in range(users))
    return (
        f'state_file = "state.db"\n[trakt]\n{trakt}[schedule]\ninterval = {interval}\n'
        f'[[targets]]\nname = "hook"\nurl = "json://127.0.0.1:18090/"\n{people}'
    )


@pytest.mark.parametrize(
    ("schedule", "warning"),
    [
        (
            ("v2", 40, "60", 20),
            (
                "watcherd: warning: 40 users every 60 s need 200 requests per 5 minutes;"
                " rate_limit 20 allows one poll of each user every 600 s"
            ),
        ),
        (
            ("v2", 1200, '"5m"', None),
            (
                "watcherd: warning: 1200 users every 300 s need 1200 requests per 5 minutes;"
                " rate_limit 1000 allows one poll of each user every 360 s"
            ),
        ),
        (("v2", 1000, '"5m"', None), None),
        (("v2", 40, "600", 20), None),
        (("v1", 1200, "60", None), None),
    ],
    ids=[
        "issue-example",
        "default-limit-exceeded",
        "default-limit-exactly-met",
        "interval-within-the-budget",
        "v1-has-no-budget",
    ],
)
@pytest.mark.usefixtures("in_process_cli")
def test_check_config_warns_only_when_the_schedule_needs_more_than_the_budget(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    schedule: tuple[str, int, str, int | None],
    warning: str | None,
) -> None:
    # schedule: the API, how many users, the interval as written, rate_limit (None: default).
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "watcherd.toml"
    config.write_text(config_text(*schedule), encoding="utf-8")

    code = main(["check-config", "--config", str(config)])
    captured = capsys.readouterr()

    assert code == 0, captured.err
    budget_lines = [line for line in captured.err.splitlines() if "rate_limit" in line]
    assert budget_lines == ([warning] if warning else [])
    assert "[trakt]" in captured.out  # the resolved configuration is still printed


@pytest.mark.usefixtures("in_process_cli")
def test_users_watching_now_count_a_second_request_per_poll_in_the_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 800 users fit a budget of 1,000 per 5 minutes; 300 of them also asking what they
    # watch now need 1,100, so each user is really polled every 330 s.
    monkeypatch.chdir(tmp_path)
    text = config_text("v2", 800, '"5m"', None)
    for index in range(300):
        entry = f'username = "friend{index}"\n'
        text = text.replace(entry, entry + "now_watching = true\n")
    config = tmp_path / "watcherd.toml"
    config.write_text(text, encoding="utf-8")

    code = main(["check-config", "--config", str(config)])
    err = capsys.readouterr().err

    assert code == 0, err
    assert (
        "watcherd: warning: 800 users (300 with now_watching) every 300 s need 1100 requests"
        " per 5 minutes; rate_limit 1000 allows one poll of each user every 330 s"
    ) in err.splitlines()
