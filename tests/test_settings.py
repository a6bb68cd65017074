"""Configuration is checked at start-up and every problem is named in one error."""

import dataclasses
import os
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from app.settings import PLACEHOLDERS, VARIABLES, ConfigError, Settings, declaration
from tests.conftest import APPLICATION_ID, SECRET_A, generate_private_key_pem

ROOT = Path(__file__).resolve().parents[1]


def test_missing_variables_are_all_named_in_one_error():
    """An empty environment names every required variable at once."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ({})

    message = str(raised.value)
    for name in ("VONAGE_APPLICATION_ID", "VONAGE_NUMBER", "API_KEYS", "VONAGE_PRIVATE_KEY"):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VONAGE_APPLICATION_ID", "not-a-uuid"),
        ("VONAGE_NUMBER", "+12"),
        ("VONAGE_NUMBER", "TwelveLetter"),
        ("VONAGE_API_HOST", "https://api.nexmo.com"),
        ("VONAGE_TIMEOUT", "ten"),
        ("VONAGE_TIMEOUT", "0"),
        ("VONAGE_MAX_RETRIES", "-1"),
        ("RATE_LIMIT", "lots"),
        ("RECIPIENT_RATE_LIMIT", "5 per fortnight"),
        ("ALLOWED_SENDERS", "MyBrand,not a valid sender id"),
        ("DEFAULT_REGION", "XX"),
        ("ALLOWED_COUNTRIES", "GB,XX"),
        ("ALLOWED_NUMBER_TYPES", "mobile,landline"),
        ("ALLOWED_NUMBER_TYPES", " , "),
        ("MAX_SEGMENTS", "0"),
        ("SEGMENT_BUDGET", "lots per day"),
        ("SEGMENT_BUDGET", "5000 per day;5 per hour"),  # below MAX_SEGMENTS (6): never a 6
        ("TRUSTED_PROXIES", "many"),
        ("LOG_LEVEL", "LOUD"),
        ("PORT", "99999"),
    ],
)
def test_invalid_variable_is_named(test_env, name, value):
    """Each invalid variable is refused by name."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_environ({**test_env, name: value})


def test_segment_budget_is_off_by_default_and_read_as_limits(test_env):
    assert Settings.from_environ(test_env).segment_budget is None
    settings = Settings.from_environ({**test_env, "SEGMENT_BUDGET": " 5000 per day;6 per hour "})
    assert settings.segment_budget == "5000 per day;6 per hour"


def test_opt_out_override_keys_name_api_keys(test_env):
    """OPT_OUT_OVERRIDE_KEYS lists key names; an unknown one is refused without being echoed
    (a secret pasted there by mistake must not reach the log)."""
    settings = Settings.from_environ({**test_env, "OPT_OUT_OVERRIDE_KEYS": " beta "})
    assert settings.opt_out_override_keys == {"beta"}
    assert Settings.from_environ(test_env).opt_out_override_keys == frozenset()
    with pytest.raises(ConfigError, match="OPT_OUT_OVERRIDE_KEYS") as raised:
        Settings.from_environ({**test_env, "OPT_OUT_OVERRIDE_KEYS": f"beta,{SECRET_A}"})
    assert SECRET_A not in str(raised.value)


def test_destination_permissions_default_to_every_country_and_the_safe_types(test_env):
    """Unset, every country is allowed, and every number type but premium-rate, shared-cost,
    UAN, voicemail and pager; the two lists are read in any case."""
    default = Settings.from_environ(test_env)
    assert default.allowed_countries == frozenset()
    assert default.allowed_number_types == {
        "fixed-line",
        "mobile",
        "fixed-line-or-mobile",
        "toll-free",
        "voip",
        "personal-number",
        "unknown",
    }
    chosen = Settings.from_environ(
        {**test_env, "ALLOWED_COUNTRIES": " gb,Ie ", "ALLOWED_NUMBER_TYPES": "MOBILE, pager"}
    )
    assert (chosen.allowed_countries, chosen.allowed_number_types) == (
        {"GB", "IE"},
        {"mobile", "pager"},
    )


def test_bad_destination_values_are_each_named_in_the_one_error(test_env):
    """Every value that is not an ISO code or a number type is named, in one error."""
    env = {**test_env, "ALLOWED_COUNTRIES": "GB, UK, EU", "ALLOWED_NUMBER_TYPES": "mobile, sms"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ(env)

    message = str(raised.value)
    assert "ALLOWED_COUNTRIES: not ISO 3166 country codes (such as GB): EU, UK" in message
    assert "ALLOWED_NUMBER_TYPES: not number types (" in message
    assert message.endswith("): sms")


def test_secret_values_never_appear_in_the_error(test_env):
    """A too-short secret is reported by its entry's position, never by its value."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ({**test_env, "API_KEYS": "good:tooShortSecretValue1"})

    assert "API_KEYS entry 1" in str(raised.value)
    assert "tooShortSecretValue1" not in str(raised.value)


@pytest.mark.parametrize(
    "api_keys",
    [
        "justasecretwithoutanamexxxxxxxxxx",  # a bare secret, no name
        f"alpha:{SECRET_A},justasecretwithoutanamexxxxxxxxxx",
        "short-secret:justaname",  # name and secret swapped
        "justasecret:with:colons",  # a secret holding colons
        "just a secret with spaces xxxxxxxxx:",
        f"alpha:{SECRET_A},alpha:justasecretwithoutanamexxxxxxxxxx",
    ],
)
def test_a_malformed_entry_is_never_echoed(test_env, api_keys):
    """Whatever is wrong with an entry, the error names its position and no part of it."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ({**test_env, "API_KEYS": api_keys})

    message = str(raised.value)
    assert "API_KEYS entry" in message
    for entry in api_keys.split(","):
        for part in entry.split(":"):
            assert len(part) < 6 or part.strip() not in message, part


@pytest.mark.parametrize(
    ("api_keys", "problem"),
    [
        (f"alpha:{SECRET_A},alpha:{SECRET_A}x", "entry 2 has the same name as entry 1"),
        (f"alpha:{SECRET_A},beta:{SECRET_A}", "entry 2 reuses the secret of entry 1"),
        (f":{SECRET_A}", "entry 1 needs a name"),
        (SECRET_A, "entry 1 is not a name:secret pair"),
        ("alpha:short", "entry 1: the secret must be at least 24 characters"),
    ],
)
def test_api_keys_are_checked(test_env, api_keys, problem):
    with pytest.raises(ConfigError, match=problem):
        Settings.from_environ({**test_env, "API_KEYS": api_keys})


def test_api_keys_map_names_to_secrets(test_env):
    settings = Settings.from_environ({**test_env, "API_KEYS": f" alpha : {SECRET_A} "})
    assert dict(settings.api_keys) == {"alpha": SECRET_A}


def test_repr_hides_secrets(base_settings):
    assert SECRET_A not in repr(base_settings)
    assert "PRIVATE" not in repr(base_settings)


def test_defaults(base_settings):
    assert base_settings.vonage_api_host == "api.nexmo.com"
    assert base_settings.vonage_timeout_s == 10
    assert base_settings.vonage_max_retries == 2
    assert base_settings.rate_limit == "60 per minute"
    assert base_settings.recipient_rate_limit == "5 per minute"
    assert base_settings.max_segments == 6
    assert base_settings.allowed_senders == ()
    assert base_settings.default_region is None


class TestPrivateKey:
    def env(self, test_env, **keys):
        env = {k: v for k, v in test_env.items() if k != "VONAGE_PRIVATE_KEY"}
        return {**env, **keys}

    def test_pkcs1_text_with_literal_newline_escapes(self, test_env):
        """A PKCS#1 key stored on one line with \\n escapes, as container platforms keep it."""
        pem = generate_private_key_pem(serialization.PrivateFormat.TraditionalOpenSSL)
        assert "BEGIN RSA PRIVATE KEY" in pem
        env = self.env(test_env, VONAGE_PRIVATE_KEY=pem.replace("\n", "\\n"))

        settings = Settings.from_environ(env)

        assert settings.vonage_private_key.key_size == 2048

    def test_pkcs8_file_path(self, test_env, tmp_path, private_key_pem):
        path = tmp_path / "private.key"
        path.write_text(private_key_pem)

        settings = Settings.from_environ(
            self.env(test_env, VONAGE_APPLICATION_PRIVATE_KEY_PATH=str(path))
        )

        assert settings.vonage_private_key.key_size == 2048

    def test_both_sources_are_refused(self, test_env, tmp_path):
        env = {**test_env, "VONAGE_APPLICATION_PRIVATE_KEY_PATH": str(tmp_path / "k.pem")}
        with pytest.raises(ConfigError, match="exactly one"):
            Settings.from_environ(env)

    def test_unreadable_path(self, test_env, tmp_path):
        env = self.env(test_env, VONAGE_APPLICATION_PRIVATE_KEY_PATH=str(tmp_path / "missing.pem"))
        with pytest.raises(ConfigError, match="cannot be read"):
            Settings.from_environ(env)

    def test_garbage_is_not_echoed(self, test_env):
        garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----"
        with pytest.raises(ConfigError, match="not a PEM private key") as raised:
            Settings.from_environ(self.env(test_env, VONAGE_PRIVATE_KEY=garbage))
        assert "bm90IGEga2V5" not in str(raised.value)

    def test_encrypted_key_is_refused(self, test_env, private_key_pem):
        key = serialization.load_pem_private_key(private_key_pem.encode(), None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        ).decode()
        with pytest.raises(ConfigError, match="password"):
            Settings.from_environ(self.env(test_env, VONAGE_PRIVATE_KEY=encrypted))


def test_allowed_senders_and_region_are_read(test_env):
    settings = Settings.from_environ(
        {**test_env, "ALLOWED_SENDERS": "MyBrand, +14155550199", "DEFAULT_REGION": "gb"}
    )
    assert settings.allowed_senders == ("MyBrand", "+14155550199")
    assert settings.default_region == "GB"
    assert settings.senders[0] == test_env["VONAGE_NUMBER"]


def test_application_id_must_be_a_uuid(test_env):
    settings = Settings.from_environ({**test_env, "VONAGE_APPLICATION_ID": APPLICATION_ID})
    assert settings.vonage_application_id == APPLICATION_ID


def example_values() -> dict[str, str]:
    """Every non-empty NAME=value of .env.example, the commented-out examples included."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^#? ?([A-Z_]+)=(.+)$", text, flags=re.MULTILINE))


def test_every_placeholder_of_env_example_is_known():
    """The example id and secrets of .env.example are all in PLACEHOLDERS, so they stay in step."""
    values = example_values()
    found = {values["VONAGE_APPLICATION_ID"], values["VONAGE_SIGNATURE_SECRET"]}
    found |= {pair.partition(":")[2] for pair in values["API_KEYS"].split(",")}
    found |= set(re.findall(r"replace-with-[a-z0-9-]+", (ROOT / ".env.example").read_text()))
    assert found == set(PLACEHOLDERS)


def test_env_example_copied_unchanged_is_refused_naming_each_placeholder(test_env):
    """.env.example copied as it is (with a real key) does not start; the error names where
    each placeholder is, never the placeholder itself."""
    values = example_values()
    environ = {
        **test_env,
        "VONAGE_APPLICATION_ID": values["VONAGE_APPLICATION_ID"],
        "API_KEYS": values["API_KEYS"],
        "VONAGE_SIGNATURE_SECRET": values["VONAGE_SIGNATURE_SECRET"],
    }
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ(environ)

    message = str(raised.value)
    for where in (
        "VONAGE_APPLICATION_ID is the placeholder",
        "API_KEYS entry 1 holds a placeholder",
        "API_KEYS entry 2 holds a placeholder",
        "VONAGE_SIGNATURE_SECRET entry 1 is a placeholder",
    ):
        assert where in message
    assert not any(placeholder in message for placeholder in PLACEHOLDERS)


# --- one declaration --------------------------------------------------------------------------


def test_each_field_is_read_from_one_declared_variable_and_has_no_default_of_its_own():
    """The declaration is the only place a name, default, parser or help is written."""
    names = [declaration(each).name for each in fields(Settings)]
    assert len(names) == len(set(names)) == len(fields(Settings))
    assert [each.name for each in fields(Settings) if each.default is not MISSING] == []
    assert len({variable.name for variable in VARIABLES}) == len(VARIABLES)


def test_the_servers_variables_default_to_one_worker_on_every_interface(base_settings):
    assert base_settings.bind == "0.0.0.0:8000"  # what gunicorn.conf.py always gave gunicorn
    assert (base_settings.port, base_settings.workers) == (8000, 1)


def test_with_redis_the_workers_default_to_one_per_cpu(test_env):
    settings = Settings.from_environ({**test_env, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert settings.workers == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("host", "bind"),
    [("127.0.0.1", "127.0.0.1:9000"), ("localhost", "localhost:9000"), ("::", "[::]:9000")],
)
def test_host_and_port_make_gunicorns_bind(test_env, host, bind):
    settings = Settings.from_environ({**test_env, "HOST": host, "PORT": "9000"})
    assert settings.bind == bind


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("HOST", "0.0.0.0:8000", "HOST must be an IP address or a host name"),
        ("HOST", "my host", "HOST must be an IP address or a host name"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be a whole number of workers, at least 1"),
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY must be a whole number of workers"),
        ("WEB_CONCURRENCY", "3", "WEB_CONCURRENCY=3 needs REDIS_URL: without shared state"),
        ("VONAGE_TIMEOUT", "²", "VONAGE_TIMEOUT must be a whole number from 1 to 120"),
        ("PORT", "٨٠", "PORT must be a whole number from 1 to 65535"),
    ],
)
def test_the_servers_variables_are_checked_with_the_rest(test_env, name, value, problem):
    """The variables gunicorn.conf.py uses are refused by the same reading, in the same error
    (a digit of another script is refused too, not a crash)."""
    with pytest.raises(ConfigError, match=re.escape(problem)):
        Settings.from_environ({**test_env, name: value})


def test_one_error_names_the_servers_problems_and_the_others():
    environ = {"HOST": "a b", "PORT": "0", "WEB_CONCURRENCY": "2", "VONAGE_TIMEOUT": "x"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ(environ)

    message = str(raised.value)
    assert message.startswith("invalid configuration: ")
    for name in ("API_KEYS", "VONAGE_TIMEOUT", "HOST", "PORT", "WEB_CONCURRENCY=2"):
        assert name in message


@pytest.mark.parametrize(
    ("changes", "state_file"),
    [
        ({"state_path": "state.db"}, "state.db"),
        ({"state_path": ":memory:"}, None),
        ({"state_path": "state.db", "redis_url": "redis://127.0.0.1:6379/0"}, None),
    ],
)
def test_the_state_file_is_named_only_when_sqlite_keeps_the_state(
    base_settings, changes, state_file
):
    """One answer for the store factory and gunicorn's schema check alike."""
    assert dataclasses.replace(base_settings, **changes).state_file == state_file
