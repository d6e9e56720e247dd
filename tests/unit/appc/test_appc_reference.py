"""App strings: name[:version][,label=value...] (discovery/parse_test.go)."""

import pytest

from rkt_core.appc import AppcError, parse_app_string


@pytest.mark.parametrize("text, name, labels", [
    ("example.com/reduce-worker:1.0.0", "example.com/reduce-worker", {"version": "1.0.0"}),
    ("example.com/reduce-worker,channel=alpha,label=value", "example.com/reduce-worker",
     {"channel": "alpha", "label": "value"}),
    ("example.com/app:1.2.3,special=!*'();@&+$/?#[],channel=beta", "example.com/app",
     {"version": "1.2.3", "special": "!*'();@&+$/?#[]", "channel": "beta"}),
    ("coreos.com/etcd", "coreos.com/etcd", {}),
    ("coreos.com/etcd:v2.0.0,os=linux,arch=amd64", "coreos.com/etcd",
     {"version": "v2.0.0", "os": "linux", "arch": "amd64"}),
    ("example.com/app,version=1=2", "example.com/app", {"version": "1=2"}),
    ("example.com/app:", "example.com/app", {"version": ""}),
])
def test_good_app_strings(text, name, labels):
    assert parse_app_string(text) == (name, labels)


def test_label_order_is_kept():
    assert list(parse_app_string("a,z=1,b=2")[1]) == ["z", "b"]


@pytest.mark.parametrize("text, message", [
    ("not an app name", 'invalid image name "not an app name"'),
    ("example.com/garbage%8 939", "invalid image name"),
    ("foo.com/bar,channel=alpha,dog=woof,channel=beta", '"channel" is given more than once'),
    ("example.com/app,channel=beta:1.2.3", "colon may appear only right after the image name"),
    ("example.com/app:3.2.1,channel=beta:1.2.3", "colon may appear only once"),
    ("example.com/app:3.2.1,version=1.2.3", '"version" is given more than once'),
    ("example.com/app,name=other", '"name" is given more than once'),
    ("example.com/app,channel", 'label "channel" has no value'),
    ("example.com/app,Channel=x", 'invalid label name "Channel"'),
    ("", "invalid image name: must not be empty"),
    (":1.0", "invalid image name: must not be empty"),
    ("evil.com/../coreos.com/etcd:1.0", 'invalid image name "evil.com/../coreos.com/etcd"'),
    ("a/./b", "invalid image name"),
    ("a//b", "invalid image name"),
])
def test_bad_app_strings(text, message):
    with pytest.raises(AppcError, match=message):
        parse_app_string(text)
