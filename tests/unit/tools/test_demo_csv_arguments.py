"""`mlstream demo --csv` refuses bad input with one clear line, before it starts or sends anything."""

import pytest

from tools.cli import main

CSV = "customer_id,plan,fee,churned\nc1,basic,10.5,yes\nc2,gold,,no\n"


@pytest.fixture
def csv_file(tmp_path, monkeypatch):
    # main() hands its profile to the processes it starts through the environment: keep that to this test
    monkeypatch.setenv("MLSTREAM_PROFILE", "local")
    monkeypatch.setenv("MLSTREAM_CONFIG", "")
    monkeypatch.setenv("MLSTREAM_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    return path


def refusal(capsys, *argv: str) -> str:
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["--label-column", "churned"], "--csv FILE needs --id-column C (the record id) and --label-column L"),
    (["--id-column", "customer_id"], "--csv FILE needs --id-column C (the record id) and --label-column L"),
    (["--id-column", "id", "--label-column", "churned"],
     ":1: --id-column 'id' is not a column (columns: customer_id, plan, fee, churned)"),
    (["--id-column", "customer_id", "--label-column", "churned", "--time-column", "when"],
     ":1: --time-column 'when' is not a column"),
    (["--id-column", "customer_id", "--label-column", "churned", "--dataset", "bananas"],
     "--csv FILE and --dataset bananas are two feeds: give one of them"),
])
def test_a_csv_without_its_columns_is_refused_naming_what_to_give(csv_file, capsys, argv, message):
    assert message in refusal(capsys, "--csv", str(csv_file), *argv)


def test_column_flags_without_a_csv_are_refused(capsys, csv_file):
    assert "mlstream demo: error: --id-column goes with --csv FILE" in refusal(capsys, "--id-column", "customer_id")


def test_a_missing_file_is_refused(capsys, tmp_path, csv_file):
    err = refusal(capsys, "--csv", str(tmp_path / "nowhere.csv"), "--id-column", "a", "--label-column", "b")
    assert f"cannot read {tmp_path / 'nowhere.csv'}: No such file or directory" in err


def test_a_file_of_malformed_rows_only_is_refused(capsys, tmp_path, csv_file):
    path = tmp_path / "broken.csv"
    path.write_text("customer_id,plan,churned\nc1,basic\n,gold,no\n")
    err = refusal(capsys, "--csv", str(path), "--id-column", "customer_id", "--label-column", "churned")
    assert f"{path}: no well-formed row to send (2 malformed)" in err


def test_the_rollback_story_takes_no_csv(capsys, csv_file):
    err = refusal(capsys, "rollback", "--csv", str(csv_file), "--id-column", "customer_id", "--label-column", "churned")
    assert "the rollback story plays its own drifting feed: leave out --csv" in err
