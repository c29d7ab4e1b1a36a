"""channels.xds.response: RegistryResponse and SOAP fault parsing, and the retry / park decision."""

from __future__ import annotations

import pytest

from channels.xds.response import (RegistryIssue, RegistryResult, ResponseFormatError, SoapFault, is_transient,
                                   parse_response, raise_for_fault, raise_for_http, raise_for_result)
from router.errors import PeerUnavailable, RejectedByPeer

ENV = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"><s:Header/><s:Body>{}</s:Body></s:Envelope>')
STATUS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
SEVERITY = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:"


def response(status: str, *errors: tuple[str, str, str]) -> bytes:
    items = "".join(f'<rs:RegistryError errorCode="{code}" codeContext="{context}" severity="{SEVERITY}{severity}" '
                    f'location="registry"/>' for code, context, severity in errors)
    error_list = f"<rs:RegistryErrorList>{items}</rs:RegistryErrorList>" if errors else ""
    return ENV.format(f'<rs:RegistryResponse status="{STATUS}{status}">{error_list}</rs:RegistryResponse>').encode()


def fault(code: str, subcode: str = "", reason: str = "went wrong") -> bytes:
    sub = (f'<s:Subcode><s:Value xmlns:wsse="urn:x">{subcode}</s:Value></s:Subcode>' if subcode else "")
    return ENV.format(f'<s:Fault><s:Code><s:Value>s:{code}</s:Value>{sub}</s:Code>'
                      f'<s:Reason><s:Text xml:lang="en">{reason}</s:Text></s:Reason></s:Fault>').encode()


def test_success():
    result = parse_response(response("Success"))
    assert result == RegistryResult(status="Success") and result.ok


def test_failure_with_its_errors():
    result = parse_response(response("Failure", ("XDSRegistryMetadataError", "missing classCode", "Error"),
                                     ("XDSExtraMetadataNotSaved", "ignored", "Warning")))
    assert result.status == "Failure" and not result.ok
    assert result.errors == (RegistryIssue("XDSRegistryMetadataError", "missing classCode", "Error", "registry"),)
    assert [w.code for w in result.warnings] == ["XDSExtraMetadataNotSaved"]


def test_partial_success_is_read():
    assert parse_response(response("PartialSuccess", ("XDSRepositoryBusy", "", "Error"))).status == "PartialSuccess"


def test_ihe_2007_status_namespace_is_accepted():
    raw = ENV.format('<rs:RegistryResponse status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"/>').encode()
    assert parse_response(raw).status == "PartialSuccess"


def test_bare_registry_response_without_envelope():
    raw = b'<rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="' + \
        STATUS.encode() + b'Success"/>'
    assert parse_response(raw).ok


def test_fault_with_subcode_and_reason():
    parsed = parse_response(fault("Sender", "wsse:FailedAuthentication", "bad token"))
    assert parsed == SoapFault(code="Sender", subcodes=("FailedAuthentication",), reason="bad token")


def test_garbage_is_a_format_error():
    with pytest.raises(ResponseFormatError):
        parse_response(b"<html>proxy error</html")
    with pytest.raises(ResponseFormatError, match="RegistryResponse"):
        parse_response(ENV.format("<other/>").encode())
    with pytest.raises(ResponseFormatError, match="status"):
        parse_response(ENV.format('<rs:RegistryResponse status="Maybe"/>').encode())


def test_success_with_warnings_is_returned():
    result = parse_response(response("Success", ("XDSExtraMetadataNotSaved", "ignored", "Warning")))
    assert raise_for_result(result) is result


@pytest.mark.parametrize("code", ["XDSRegistryBusy", "XDSRepositoryBusy", "XDSRegistryOutOfResources",
                                  "XDSRegistryNotAvailable", "XDSRepositoryError"])
def test_busy_registry_is_transient(code):
    with pytest.raises(PeerUnavailable) as caught:
        raise_for_result(parse_response(response("Failure", (code, "", "Error"))))
    assert caught.value.code == code


@pytest.mark.parametrize("code", ["XDSRegistryMetadataError", "XDSPatientIdDoesNotMatch", "XDSDocumentUniqueIdError",
                                  "XDSDuplicateUniqueIdInRegistry", "XDSUnknownPatientId", "DMPClosed",
                                  "SomeCodeNobodyKnows"])
def test_content_refusals_are_permanent(code):
    with pytest.raises(RejectedByPeer) as caught:
        raise_for_result(parse_response(response("Failure", (code, "context", "Error"))))
    assert caught.value.code == code


def test_one_permanent_error_among_busy_ones_makes_it_permanent():
    with pytest.raises(RejectedByPeer):
        raise_for_result(parse_response(response("Failure", ("XDSRegistryBusy", "", "Error"),
                                                 ("XDSRegistryMetadataError", "", "Error"))))


def test_partial_success_is_parked_not_retried():
    with pytest.raises(RejectedByPeer, match="PartialSuccess"):
        raise_for_result(parse_response(response("PartialSuccess", ("XDSRepositoryBusy", "", "Error"))))


def test_failure_without_errors_is_permanent():
    with pytest.raises(RejectedByPeer, match="no RegistryError"):
        raise_for_result(RegistryResult(status="Failure"))


def test_reason_reads_in_french_and_english():
    with pytest.raises(RejectedByPeer) as caught:
        raise_for_result(parse_response(response("Failure", ("XDSUnknownPatientId", "INS inconnu", "Error"))))
    assert "DMP inexistant" in caught.value.reason and "unknown patient id" in caught.value.reason
    assert "INS inconnu" in caught.value.reason


def test_receiver_fault_is_transient_sender_fault_permanent():
    with pytest.raises(PeerUnavailable) as caught:
        raise_for_fault(parse_response(fault("Receiver")))
    assert caught.value.code == "Receiver"
    with pytest.raises(RejectedByPeer) as caught:
        raise_for_fault(parse_response(fault("Sender", "wsse:FailedAuthentication")))
    assert caught.value.code == "Sender/FailedAuthentication"
    with pytest.raises(RejectedByPeer):
        raise_for_fault(parse_response(fault("MustUnderstand")))


def test_expired_message_fault_is_transient():
    with pytest.raises(PeerUnavailable):
        raise_for_fault(parse_response(fault("Sender", "wsse:MessageExpired")))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_http_server_errors_are_transient(status):
    with pytest.raises(PeerUnavailable) as caught:
        raise_for_http(status, "x")
    assert caught.value.code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 415])
def test_http_client_errors_are_permanent(status):
    with pytest.raises(RejectedByPeer):
        raise_for_http(status)


def test_http_success_passes():
    assert raise_for_http(200) is None


def test_unknown_codes_are_not_transient():
    assert is_transient("XDSRegistryBusy") and not is_transient("XDSWhatever")
