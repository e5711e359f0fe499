import pytest

from service.auth import ApiKeyConfigError, Authenticator, AuthError, parse_api_keys

KEYS = "platform:route-and-ingest-0001:route+ingest,ops:admin-secret-000002:admin"


def test_keys_parse_with_their_scopes_and_never_show_secrets() -> None:
    platform, ops = parse_api_keys(KEYS)
    assert platform.name == "platform" and platform.scopes == {"route", "ingest"}
    assert ops.scopes == {"admin"}
    assert "route-and-ingest" not in repr(platform)
    assert parse_api_keys("") == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("platform:short:route", "shorter than 16"),
        ("platform:route-and-ingest-0001:route+fly", "unknown scopes"),
        ("platform:route-and-ingest-0001", "<name>:<secret>:<scopes>"),
        ("a:route-and-ingest-0001:route,a:route-and-ingest-0002:route", "appears twice"),
    ],
)
def test_bad_key_configuration_is_explained_without_the_secret(value: str, message: str) -> None:
    with pytest.raises(ApiKeyConfigError, match=message) as error:
        parse_api_keys(value)
    assert "route-and-ingest-000" not in str(error.value)


def test_missing_or_wrong_key_is_401_and_wrong_scope_is_403() -> None:
    auth = Authenticator(parse_api_keys(KEYS))
    assert auth.authorize("Bearer route-and-ingest-0001", "ingest").name == "platform"
    for header in (None, "", "Basic abc", "Bearer ", "Bearer route-and-ingest-0002"):
        with pytest.raises(AuthError) as error:
            auth.authorize(header, "route")
        assert error.value.status == 401
    with pytest.raises(AuthError) as error:
        auth.authorize("Bearer route-and-ingest-0001", "admin")
    assert error.value.status == 403 and "'admin'" in error.value.detail
