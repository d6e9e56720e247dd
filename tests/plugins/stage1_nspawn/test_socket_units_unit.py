"""The units that hand an app the sockets ``rkt run`` was passed by socket activation."""

from rkt_core.pod.limits import AppLimits as Limits
from rkt_stage1_nspawn import units


def _service(sockets) -> units.AppService:
    return units.AppService(app="web", image="i", main=units.Command("/bin/true", ("/bin/true",)),
                            working_directory="/", uid=0, gid=0, groups=(), environment={},
                            limits=Limits(), sockets=sockets)


def test_each_port_gets_a_socket_unit_listing_exactly_its_sockets():
    http = units.PortSockets("http", "tcp", ("127.0.0.1:8080", "[::1]:8080"))
    dns = units.PortSockets("dns", "udp", ("127.0.0.1:53",))
    assert units.socket_file("web", "http") == "web.http.socket"
    text = units.socket_unit("web", http)
    assert "\nService=web.service\n" in text
    assert "\nFileDescriptorName=http\n" in text
    assert "\nListenStream=127.0.0.1:8080\nListenStream=[::1]:8080\n" in text
    assert "\nListenDatagram=127.0.0.1:53\n" in units.socket_unit("web", dns)

    service = units.app_service(_service([http, dns]), interactive=False)
    assert "\nRequires=web.http.socket web.dns.socket\n" in service
    assert "\nSockets=web.http.socket web.dns.socket\n" in service
    assert units.sockets_drop_in(["web.http.socket", "web.dns.socket"]) == (
        "[Unit]\nWants=web.http.socket\nWants=web.dns.socket\n")


def test_an_app_without_sockets_has_no_socket_settings():
    service = units.app_service(_service([]), interactive=False)
    assert "Sockets=" not in service and ".socket " not in service
