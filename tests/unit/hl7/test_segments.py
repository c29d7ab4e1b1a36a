from router.hl7.segments import normalise_segments


def test_lf_segment_endings_become_cr():
    text = "MSH|^~\\&|A|B\nPID|1\nOBX|1|TX|||x\n"
    assert normalise_segments(text) == "MSH|^~\\&|A|B\rPID|1\rOBX|1|TX|||x\r"


def test_crlf_segment_endings_become_cr():
    assert normalise_segments("MSH|^~\\&|A\r\nPID|1\r\n") == "MSH|^~\\&|A\rPID|1\r"


def test_lf_inside_a_field_is_kept():
    text = "MSH|^~\\&|A\nOBX|1|TX|||line one\nline two\nPID is not a segment\nNTE|1\n"
    assert normalise_segments(text) == "MSH|^~\\&|A\rOBX|1|TX|||line one\nline two\nPID is not a segment\rNTE|1\r"


def test_lf_followed_by_segment_id_with_custom_field_separator():
    assert normalise_segments("MSH#^~\\&#A\nPID#1\nnot|seg\n") == "MSH#^~\\&#A\rPID#1\nnot|seg\r"


def test_trailing_and_blank_segments_are_stripped():
    assert normalise_segments("\r\nMSH|^~\\&|A\r\rPID|1\r\r\n  \r\x00") == "MSH|^~\\&|A\rPID|1\r"


def test_missing_final_terminator_is_added():
    assert normalise_segments("MSH|^~\\&|A\rPID|1") == "MSH|^~\\&|A\rPID|1\r"


def test_already_normal_text_is_unchanged():
    text = "MSH|^~\\&|A\rPID|1\r"
    assert normalise_segments(text) == text


def test_empty_text():
    assert normalise_segments(" \r\n") == ""


def test_blank_lines_between_segments_are_terminators():
    assert normalise_segments("MSH|^~\\&|A\n\n\nPID|1\n") == "MSH|^~\\&|A\rPID|1\r"
