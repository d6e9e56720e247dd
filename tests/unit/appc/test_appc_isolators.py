"""Isolators: known ones checked and parsed, unknown ones kept raw (isolator_test.go)."""

import json

import pytest

from rkt_core.appc import AppcError, Isolator, cpu_isolator, memory_isolator
from rkt_core.appc.isolators import isolators_from_json


def isolator(text: str) -> Isolator:
    return Isolator.from_json(json.loads(text))


@pytest.mark.parametrize("text", [
    '{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_KILL"]}}',
    '{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_PONIES"]}}',
    '{"name": "resource/block-bandwidth", "value": {"default": true, "limit": "1G"}}',
    '{"name": "resource/block-iops", "value": {"default": true, "limit": "1G"}}',
    '{"name": "resource/cpu", "value": {"request": "30m", "limit": "1m"}}',
    '{"name": "resource/memory", "value": {"request": "1G", "limit": "2Gi"}}',
    '{"name": "resource/network-bandwidth", "value": {"default": true, "limit": "1G"}}',
    '{"name": "resource/memory", "value": {"default": false, "limit": 1000}}',
])
def test_good_known_isolators(text):
    iso = isolator(text)
    assert iso.known
    assert iso.to_json() == json.loads(text)


@pytest.mark.parametrize("text, message", [
    ('{"name": "os/linux/capabilities-retain-set", "value": {"set": []}}',
     "set must list at least one capability"),
    ('{"name": "os/linux/capabilities-retain-set", "value": {"set": "CAP_PONIES"}}',
     "must be a JSON array"),
    ('{"name": "os/linux/capabilities-remove-set", "value": {}}', "at least one capability"),
    ('{"name": "os/linux/capabilities-remove-set", "value": {"set": [1]}}', "must be a string"),
    ('{"name": "resource/block-bandwidth", "value": {"default": false, "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/block-bandwidth", "value": {"request": "30G", "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/block-bandwidth", "value": {"default": true, "request": "30G"}}',
     "takes no request"),
    ('{"name": "resource/block-iops", "value": {"default": false, "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/block-iops", "value": {"request": "30G", "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/memory", "value": {"default": true, "request": "1G", "limit": "2G"}}',
     "default must be false"),
    ('{"name": "resource/cpu", "value": {"default": true}}', "default must be false"),
    ('{"name": "resource/network-bandwidth", "value": {"default": false, "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/network-bandwidth", "value": {"request": "30G", "limit": "1G"}}',
     "default must be true"),
    ('{"name": "resource/memory", "value": {"limit": "1K"}}',
     'isolator "resource/memory": limit: invalid quantity "1K"'),
    ('{"name": "resource/cpu", "value": {"limit": "such garbage"}}', "invalid quantity"),
    ('{"name": "resource/cpu", "value": {"default": "no"}}', "must be true or false"),
    ('{"name": "resource/cpu", "value": 5}', "must be a JSON object"),
    ('{"name": "resource/memory"}', 'isolator "resource/memory": a value is required'),
    ('{"name": "resource/memory", "value": null}', "a value is required"),
    ('{"name": "Resource/Memory", "value": {}}', "invalid isolator name"),
    ('{"value": {}}', "invalid isolator name"),
])
def test_bad_isolators(text, message):
    with pytest.raises(AppcError, match=message):
        isolator(text)


def test_resource_accessors():
    iso = isolator('{"name": "resource/memory", "value": {"request": "1G", "limit": "2Gi"}}')
    assert iso.request.value == 1000000000
    assert iso.limit.value == 2 * 1024 ** 3
    assert str(iso.limit) == "2Gi"
    assert iso.default is False
    assert iso.capabilities == ()
    cpu = isolator('{"name": "resource/cpu", "value": {"limit": "500m"}}')
    assert cpu.limit.milli_value == 500
    assert cpu.request is None


def test_capability_accessor():
    iso = isolator('{"name": "os/linux/capabilities-remove-set", '
                   '"value": {"set": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]}}')
    assert iso.capabilities == ("CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN")
    assert iso.limit is None


def test_value_keys_match_case_insensitively_and_unknown_keys_are_kept():
    iso = isolator('{"NAME": "resource/memory", "Value": {"LIMIT": "1G", "extra": [1, 2.50]}}')
    assert iso.limit.value == 10 ** 9
    assert iso.to_json()["value"] == {"LIMIT": "1G", "extra": [1, 2.5]}


@pytest.mark.parametrize("text", [
    '{"name": "os/linux/no-new-privileges", "value": true}',
    '{"name": "example.com/whatever", "value": {"anything": [1, "two"]}}',
    '{"name": "os/linux/seccomp-remove-set", "value": {"set": []}}',
    '{"name": "example.com/nothing"}',
])
def test_unknown_isolators_are_kept_raw(text):
    iso = isolator(text)
    assert not iso.known
    assert iso.value == json.loads(text).get("value")
    assert iso.limit is None and iso.capabilities == ()


def test_unknown_isolator_without_value_writes_null():
    assert Isolator("example.com/x").to_json() == {"name": "example.com/x", "value": None}


def test_isolator_list():
    isos = isolators_from_json([{"name": "resource/cpu", "value": {"limit": "1"}},
                                {"name": "example.com/x", "value": 1}])
    assert [i.name for i in isos] == ["resource/cpu", "example.com/x"]
    assert [i.known for i in isos] == [True, False]
    assert isolators_from_json(None) == []
    with pytest.raises(AppcError, match=r"isolators\[0\]"):
        isolators_from_json(["resource/cpu"])


def test_cli_helpers_set_request_and_limit_like_rkt():
    mem = memory_isolator("64M")
    assert mem.to_json() == {"name": "resource/memory",
                             "value": {"default": False, "request": "64M", "limit": "64M"}}
    assert mem.limit.value == 64 * 10 ** 6
    cpu = cpu_isolator("500m")
    assert cpu.name == "resource/cpu"
    assert cpu.limit.milli_value == cpu.request.milli_value == 500
    assert cpu_isolator("1.5").value["limit"] == "1500m"


@pytest.mark.parametrize("helper, flag", [(memory_isolator, "--memory"), (cpu_isolator, "--cpu")])
def test_cli_helpers_reject_bad_amounts(helper, flag):
    with pytest.raises(AppcError, match=f"invalid {flag} value: invalid quantity"):
        helper("64K")
