"""A .env file fills what the real environment lacks, and ENV_FILE chooses or disables it."""

from app.settings import read_environment


def test_env_file_values_yield_to_the_real_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VONAGE_NUMBER=+14155550100\nLOG_LEVEL=DEBUG\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENV_FILE", raising=False)
    monkeypatch.delenv("VONAGE_NUMBER", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")

    environment = read_environment()

    assert environment["VONAGE_NUMBER"] == "+14155550100"
    assert environment["LOG_LEVEL"] == "WARNING"


def test_env_file_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "other.env").write_text("MAX_SEGMENTS=3\n")
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "other.env"))
    monkeypatch.delenv("MAX_SEGMENTS", raising=False)
    assert read_environment()["MAX_SEGMENTS"] == "3"


def test_empty_env_file_reads_nothing(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("MAX_SEGMENTS=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENV_FILE", "")
    monkeypatch.delenv("MAX_SEGMENTS", raising=False)
    assert "MAX_SEGMENTS" not in read_environment()
