# Entry points (see README): `make demo` installs everything and runs the example,
# `make test` installs everything and runs the whole test suite, `make bench` installs the
# reference tools and runs the benchmarks.

VENV       ?= .venv
PYTHON     ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PLUGINS    := $(sort $(dir $(wildcard rkt_plugins/*/pyproject.toml)))

# Real components the runtime and its tests use (DESIGN.md, "Real components").
DEB_PACKAGES := busybox-static gnupg systemd systemd-container containernetworking-plugins \
	iptables iproute2 skopeo umoci docker-registry apache2-utils qemu-system-x86 linux-image-amd64 \
	swtpm swtpm-tools tpm2-tools debootstrap xz-utils bzip2 python3-venv runc crun time cpio

# The reference tools the benchmarks compare against (docs/performance.md), installed by `make bench` only.
BENCH_PACKAGES := runc podman skopeo umoci systemd-container debootstrap docker-registry \
	containernetworking-plugins iptables iproute2 busybox-static python3-venv time \
	curl gnupg
# The benchmarks measure a regular (non-editable) install, as users have, in a venv of their own.
BENCH_VENV ?= .bench-venv

.PHONY: setup deb install-debs venv demo test bench clean

setup: deb venv

deb:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(DEB_PACKAGES)"

install-debs:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

venv:
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	# Editable installs are not byte-compiled; compile now so start-up never compiles
	# (PYTHONDONTWRITEBYTECODE would otherwise make every run pay for it).
	$(VENV)/bin/python -m compileall -q rkt_core rkt_plugins

demo: setup
	$(VENV)/bin/python scripts/demo.py

test: setup
	RKT_TESTS_STRICT=1 $(VENV)/bin/pytest -q

bench:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(BENCH_PACKAGES)"
	rm -rf $(BENCH_VENV) && $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	rm -rf build $(PLUGINS:%=%build)  # stale build trees would go into the wheels
	$(BENCH_VENV)/bin/pip wheel --quiet --no-deps --wheel-dir $(BENCH_VENV)/wheels . $(PLUGINS)
	rm -rf build $(PLUGINS:%=%build)
	# cryptography: the harness's HTTPS server (rkt_core.testing) makes its certificates with it;
	# requests: the harness loads the test registry with it (rkt does not use it)
	$(BENCH_VENV)/bin/pip install --quiet $(BENCH_VENV)/wheels/*.whl cryptography requests
	$(BENCH_VENV)/bin/python bench/bench.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo
