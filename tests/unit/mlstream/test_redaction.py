import logging

from mlstream.redaction import install_log_masking, mask_secrets


def test_passwords_in_urls_are_masked_in_every_log_record_whoever_handles_it(caplog):
    install_log_masking()
    install_log_masking()  # idempotent
    url = "http://svc-user:p%40ss-w0rd@registry.example:8081/apis/ccompat/v7"
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx2").info('HTTP Request: %s %s "%s %d %s"', "GET", url + "/schemas/ids/1",
                                         "HTTP/1.1", 200, "OK")
        logging.getLogger("anything").warning("registry down at %s", url)
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            logging.getLogger("anything").exception("failed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "p%40ss-w0rd" not in text
    assert "http://svc-user:***@registry.example:8081/apis/ccompat/v7/schemas/ids/1" in caplog.text
    assert "cannot reach http://svc-user:***@registry.example" in text  # the traceback too


def test_text_without_credentials_is_left_alone():
    for text in ("http://localhost:8081/apis/ccompat/v7", "kafka://broker:9092", "user@example.com",
                 "a:b@c without a scheme"):
        assert mask_secrets(text) == text
