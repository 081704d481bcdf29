# Thin wrapper over Meson + Ninja. `make run` and `make test` work on a fresh Debian 12 as root.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3

BUILD_PKGS = meson ninja-build pkg-config gcc libevent-dev libc-ares-dev libssl-dev \
             libsqlite3-dev libidn2-dev libinih-dev libjansson-dev libcmocka-dev openssl
TEST_PKGS  = python3-pytest python3-dnspython python3-aiosmtpd python3-flufl.bounce swaks rbldnsd unbound

.PHONY: all deps test-deps build asan run test unit integration tls-cert demo-tenant clean

all: build

# Installs only what is missing; apt-get update only when an install is needed.
deps:
	@./tools/ensure-packages $(BUILD_PKGS)

test-deps: deps
	@./tools/ensure-packages $(TEST_PKGS)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dtests=disabled

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# A self-signed certificate for STARTTLS on first start (the embedded config points here).
tls-cert: var/tls/cert.pem
var/tls/cert.pem:
	mkdir -p var/tls
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN=mxgate.localhost \
		-keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null
	chmod 600 var/tls/key.pem

# The demo tenant: example.test routed to 127.0.0.1:2600, created once in ./var/policy.db.
demo-tenant: build
	@./$(BUILD)/mxgate tenant list | grep -q '^demo ' || { \
		./$(BUILD)/mxgate tenant add demo --route 127.0.0.1:2600 && \
		./$(BUILD)/mxgate domain add demo example.test; }

run: build tls-cert demo-tenant
	./$(BUILD)/mxgate serve

unit: test-deps asan
	meson test -C $(ASAN_BUILD) --print-errorlogs

integration: test-deps asan
	MXGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/mxgate $(PYTHON) -m pytest -q -c $(CURDIR)/pytest.ini --rootdir=$(CURDIR) tests/integration

test: unit integration

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
