from mlstream.kafka.dead_letters import MAX_KEPT_VALUE_BYTES, dead_letter


def test_a_dead_letter_keeps_a_huge_value_only_in_part_and_says_where_the_rest_is():
    value = b"x" * (MAX_KEPT_VALUE_BYTES + 100_000)
    letter = dead_letter("t", 2, 7, 0, b"k", value, None, "RECORD_TOO_LARGE", "too big", "scorer")
    assert len(letter["value"]) == MAX_KEPT_VALUE_BYTES
    assert "all of it is at t[2]@7" in letter["error_message"]
    small = dead_letter("t", 0, 1, 0, b"k", b"abc", None, "DECODE_FAILED", "bad", "scorer")
    assert small["value"] == b"abc" and small["error_message"] == "bad"
