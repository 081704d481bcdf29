# Thin wrapper over Meson + Ninja. `make run` and `make test` work on a fresh Debian 12 as root.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600

BUILD_PKGS = meson ninja-build pkg-config gcc libevent-dev libc-ares-dev libssl-dev \
             libsqlite3-dev libidn2-dev libinih-dev libjansson-dev libcmocka-dev openssl
TEST_PKGS  = python3-pytest python3-dnspython python3-aiosmtpd python3-flufl.bounce swaks rbldnsd unbound \
             clang libclang-rt-14-dev

.PHONY: all deps test-deps build asan run install test unit integration tls-cert demo-tenant user clean \
        fuzz-build fuzz fuzz-smoke

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

# `serve` started as root runs as this unprivileged user; created when missing (root only).
MXGATE_USER ?= mxgate
user:
	@if [ "$$(id -u)" = 0 ] && ! getent passwd $(MXGATE_USER) >/dev/null; then \
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin $(MXGATE_USER); \
		echo "created system user $(MXGATE_USER)"; fi

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

run: build user tls-cert demo-tenant
	./$(BUILD)/mxgate serve

# The binary to /usr/local/bin, the example config to /etc/mxgate/mxgate.conf (never over an
# existing one), data_dir /var/lib/mxgate owned by the user. Run as root.
install: build user
	meson install -C $(BUILD) --no-rebuild
	@test -e /etc/mxgate/mxgate.conf || install -D -m 0644 etc/mxgate.conf.example /etc/mxgate/mxgate.conf
	install -d -m 0700 -o $(MXGATE_USER) -g $$(id -g $(MXGATE_USER)) /var/lib/mxgate

unit: test-deps asan
	meson test -C $(ASAN_BUILD) --print-errorlogs

integration: test-deps asan user
	MXGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/mxgate $(PYTHON) -m pytest -q -c $(CURDIR)/pytest.ini --rootdir=$(CURDIR) tests/integration

test: unit fuzz-smoke integration

# libFuzzer targets (fuzz/README.md): clang, ASan+UBSan, coverage in every library.
FUZZ_TARGETS = smtp_command datastream proxy dnsbl_answer config qfile

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=disabled --buildtype=debugoptimized \
		-Db_sanitize=address,undefined -Db_lundef=false

fuzz-build: test-deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(addprefix fuzz/fuzz_,$(FUZZ_TARGETS))

# Each target FUZZ_SECONDS (default 600) on $(FUZZ_BUILD)/corpus-NAME, a copy of the seeds that
# grows from run to run; prints execs, exec/s, cov and ft per target.
fuzz: fuzz-build
	./tools/fuzz-run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A few seconds per target from the seeds alone: the seeds still pass, the obvious still holds.
fuzz-smoke: fuzz-build
	FUZZ_FRESH=1 ./tools/fuzz-run $(FUZZ_BUILD) 4 $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
