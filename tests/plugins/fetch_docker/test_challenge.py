"""WWW-Authenticate parsing: quoted commas, several challenges, escapes, case."""

from rkt_fetch_docker.challenge import Challenge, parse_challenges


def test_bearer_with_quoted_commas_and_error():
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert parse_challenges(header) == [Challenge("bearer", {
        "realm": "https://auth.example/token", "service": "registry.example",
        "scope": "repository:a/b:pull,push", "error": "insufficient_scope"})]


def test_several_challenges_in_one_header():
    header = 'Basic realm="basic, realm", Bearer realm="https://t/x" , service=svc'
    assert parse_challenges(header) == [Challenge("basic", {"realm": "basic, realm"}),
                                        Challenge("bearer", {"realm": "https://t/x",
                                                             "service": "svc"})]


def test_case_whitespace_and_escapes():
    header = 'BEARER  Realm = "a\\"b\\\\c" ,  SERVICE=x'
    assert parse_challenges(header) == [Challenge("bearer", {"realm": 'a"b\\c', "service": "x"})]


def test_token68_and_bare_schemes():
    assert parse_challenges("Negotiate abc+/==, Basic") == [
        Challenge("negotiate", {"": "abc+/=="}), Challenge("basic", {})]


def test_first_value_of_a_repeated_parameter_wins():
    assert parse_challenges('Bearer realm="a",realm="b"')[0].params == {"realm": "a"}


def test_garbage_ends_the_list():
    assert parse_challenges("") == []
    assert parse_challenges('Bearer realm="unterminated') == [Challenge("bearer", {})]
    assert parse_challenges("=== Basic") == []
