"""Log lines: format, levels, per-area filters, secrets never printed, parse back."""

from fwtest import ListLog, raises
from sipua import log as logmod


def test_line_format_and_parse_back():
    out = ListLog()
    out.logger.info("reg", "registered", server="uc2.airties.lab", expires=300)
    assert out.lines == ["0 INFO reg registered expires=300 server=uc2.airties.lab"]
    ev = logmod.parse_line(out.lines[0])
    assert ev == {"ms": 0, "level": "INFO", "area": "reg", "event": "registered",
                  "expires": "300", "server": "uc2.airties.lab"}


def test_values_with_spaces_and_quotes_round_trip():
    out = ListLog()
    out.logger.warn("sip", "bad_request", reason='Bad "Via" header', empty="")
    line = out.lines[0]
    assert 'reason="Bad \\"Via\\" header"' in line
    ev = logmod.parse_line(line)
    assert ev["reason"] == 'Bad "Via" header' and ev["empty"] == ""


def test_levels_and_area_overrides():
    out = ListLog(level=logmod.INFO)
    lg = out.logger
    lg.debug("dns", "query")
    lg.info("dns", "answer")
    lg.areas["dns"] = logmod.DEBUG
    lg.debug("dns", "query2")
    lg.debug("sip", "hidden")
    lg.areas["sip"] = logmod.ERROR
    lg.warn("sip", "hidden2")
    assert [logmod.parse_line(x)["event"] for x in out.lines] == ["answer", "query2"]
    assert lg.enabled(logmod.DEBUG, "dns") and not lg.enabled(logmod.WARN, "sip")


def test_secrets_are_never_printed():
    out = ListLog(level=logmod.DEBUG)
    out.logger.debug("cfg", "account", user="6903", password="hunter2", ha1="abc123",
                     wifi_psk="s3cret", api_secret="x9")
    line = out.lines[0]
    for secret in ("hunter2", "abc123", "s3cret", "x9"):
        assert secret not in line
    assert "password=***" in line and "user=6903" in line


def test_level_names():
    from sipua.startup import level_from_name

    assert level_from_name("WARN") == logmod.WARN and level_from_name("off") == logmod.OFF
    e = raises(ValueError, level_from_name, "loud")
    assert "loud" in str(e)


def test_non_log_lines_parse_to_none():
    assert logmod.parse_line("Traceback (most recent call last):") is None
    assert logmod.parse_line(">>> ") is None
    assert logmod.parse_line("12 NOPE a b") is None
